"""Folding raw envelopes into order facts, fast (the rebuild, ``kpi replay``).

Validating an envelope with pydantic costs ~50 µs on this machine and even a
plain ``json.loads`` of the ~900 bytes of a ``service_order.transitioned`` ~10–20 µs:
too slow for millions of events. The producers serialise envelopes with pydantic
(``Envelope.model_dump_json``), so each event type has one canonical byte layout.
For the types the rebuild reads in bulk the ``Folder`` matches that layout with an
anchored regular expression that checks the envelope and the fields the
projection uses (type, schema version, ids, version, action, states, role,
timestamps with a zone, the order snapshot's merchant/SKU/category/amount/types),
and reads only those:

- the order snapshot that every transition repeats is parsed only when the fold
  needs it (the order is new, or this event has a lower order version);
- ``details`` is parsed (``json.loads`` of that part only) only for the actions
  whose details the projection reads (rating, refunds, arbitration decisions);
- SLA events other than the 48 h penalty are recognised and skipped.

Anything else — another layout, an escaped character in a field it reads, a value
the expression does not accept, another event type — takes the full path: the
envelope is validated by the registry's pydantic models exactly as the live
consumer does, and an envelope they reject is skipped (the consumer parks it).
The fields the fast path does not read (customer data, notes…) are not validated:
the rebuild trusts that the topics hold what the producers validated.

``tests/test_fastdecode.py`` checks that both paths fold to identical facts.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from pydantic import ValidationError

from kpi import projection as P
import shared.contracts  # noqa: F401 - registers the event types
from shared.events import Envelope, UnknownEventType, registry

_UUID = rb'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
_S = rb'"[^"\\]*"'  # a JSON string not read (one with an escape takes the full path)
_OPT_S = rb'(?:null|' + _S + rb')'
_C = rb'"([^"\\]*)"'  # a string we read: without escapes (else the full path)
_C1 = rb'"([^"\\]+)"'
_DT = rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d))"'
_DT_ANY = rb'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)"'


def _head(type_: bytes) -> bytes:
    return (rb'\{"id":"' + _UUID + rb'","type":"' + type_ + rb'","schema_version":1,"occurred_at":' + _DT_ANY
            + rb',"producer":"[^"\\]{1,80}","key":"[^"\\]{1,200}","correlation_id":' + _OPT_S + rb',"data":\{')


TRANSITION_HEAD = re.compile(
    _head(rb'service_order\.transitioned') + rb'"order_id":' + _C1 + rb',"number":' + _S
    + rb',"version":([1-9]\d*),"action":' + _C1 + rb',"from_state":' + _S + rb',"to_state":' + _C
    + rb',"actor_role":' + _C + rb',"actor_id":' + _S + rb',"occurred_at":' + _DT + rb',"order":\{')
_SNAP_FIELDS = (rb'"merchant_id":' + _C1 + rb',"customer_id":' + _S + rb',"customer_phone":' + _S
                + rb',"customer_level":' + _S + rb',"sales_order_id":' + _S + rb',"sku":' + _C + rb',"category":' + _C
                + rb',"quantity":[1-9]\d*,"amount_paid":"(\d{1,12}(?:\.\d{1,2})?)"'
                + rb',"service_type":"(return|exchange|repair|compensation)"'
                + rb',"problem_type":"(quality|logistics|not_as_described|no_reason|other)"')
SNAPSHOT = re.compile(_SNAP_FIELDS + rb'(?:,"mode":' + _C + rb')?,"created_at":' + _DT
                      + rb'(?:,"on_behalf":(true|false))?[,}]')
CREATED = re.compile(
    _head(rb'service_order\.created') + rb'"order_id":' + _C1 + rb',"number":' + _S + rb',"version":([1-9]\d*)'
    + rb',"state":' + _S + rb',' + _SNAP_FIELDS + rb',"delivered_at":' + _DT_ANY + rb',"created_at":' + _DT
    + rb'(?:,"mode":' + _C + rb')?(?:,"on_behalf":(true|false))?[,}]')
FIRED = re.compile(
    _head(rb'sla\.deadline_fired') + rb'"timer_id":' + _S + rb',"order_id":' + _C1 + rb',"rule":' + _S
    + rb',"action":' + _C1 + rb',"order_version":\d+,"order_state":' + _S + rb',"due_at":' + _DT_ANY
    + rb',"fired_at":' + _DT + rb',"details":')

_TYPE_AT = 53  # len('{"id":"<36 characters>","type":"')
_DETAILS = b'},"details":'
_fromiso = datetime.fromisoformat
_UTC = timezone.utc
_words: dict[bytes, str] = {}


def _word(b: bytes) -> str:
    """Decode a small vocabulary value (actions, states, roles), cached."""
    s = _words.get(b)
    if s is None:
        s = b.decode()
        if len(_words) < 10000:
            _words[b] = s
    return s


def _dt(b: bytes) -> datetime:
    s = b.decode()
    d = _fromiso(s)
    return d if s[-1] == "Z" else d.astimezone(_UTC)


def _cents(amount: bytes) -> int:
    whole, _, frac = amount.partition(b".")
    return int(whole) * 100 + int((frac + b"00")[:2])


def _mode(b: bytes | None) -> str:
    return P.DEFAULT_MODE if b is None else (_words.get(b) or _word(b))  # absent: the contracts' default


def _snap(g) -> tuple:
    """A transition's order snapshot (``SNAPSHOT`` groups: the mode before the creation time)."""
    merchant, sku, category, amount, service, problem, mode, created, on_behalf = g
    return (merchant.decode(), category.decode(), sku.decode(), _word(service), _word(problem), _cents(amount),
            _dt(created), on_behalf == b"true", _mode(mode))


def _created_snap(g) -> tuple:
    """A creation's snapshot (``CREATED`` groups after the id and version: the mode after the creation time)."""
    merchant, sku, category, amount, service, problem, created, mode, on_behalf = g
    return _snap((merchant, sku, category, amount, service, problem, mode, created, on_behalf))


class Folder:
    """Folds envelopes (bytes) into ``rows`` (order id → ``OrderFact``) and
    ``consultations`` (fact id → consultation fact)."""

    def __init__(self) -> None:
        self.rows: dict[str, P.OrderFact] = {}
        self.consultations: dict[str, tuple] = {}
        self.catalogue: dict[tuple[str, str], tuple] = {}  # (merchant, SKU) → the newest entry (``P.newer_entry``)
        self.fast = self.slow = self.invalid = self.ignored = 0

    def stats(self) -> dict:
        return {"fast": self.fast, "slow": self.slow, "invalid": self.invalid, "ignored": self.ignored,
                "orders": len(self.rows), "consultation_facts": len(self.consultations),
                "catalogue_skus": len(self.catalogue)}

    def row(self, oid: str) -> P.OrderFact:
        r = self.rows.get(oid)
        if r is None:
            r = self.rows[oid] = P.OrderFact(oid)
        return r

    def feed(self, raw: bytes) -> None:
        try:
            if self._fast(raw):
                self.fast += 1
                return
        except (ValueError, UnicodeDecodeError):
            pass  # e.g. a timestamp fromisoformat refuses, malformed details: the full path decides
        self._slow(raw)

    def _fast(self, raw: bytes) -> bool:
        t = raw[_TYPE_AT:_TYPE_AT + 28]
        if t.startswith(b'service_order.transitioned"'):
            m = TRANSITION_HEAD.match(raw)
            if m is None:
                return False
            oid_b, version_b, action_b, to_b, role_b, at_b = m.groups()
            action = _words.get(action_b) or _word(action_b)
            details = _NO_DETAILS
            if action in _DETAIL_ACTIONS:
                i = raw.find(_DETAILS, m.end())
                end = len(raw)
                if i < 0 or raw[end - 2:end] != b"}}":
                    return False
                details = json.loads(raw[i + 12:end - 2])
                if not isinstance(details, dict):
                    return False
            oid = oid_b.decode()
            version = int(version_b)
            at = _dt(at_b)
            row = self.rows.get(oid)
            snap = None
            if row is None or row.snap_version is None or version <= row.snap_version:
                sm = SNAPSHOT.match(raw, m.end())
                if sm is None:
                    return False
                snap = _snap(sm.groups())
            if row is None:
                row = self.rows[oid] = P.OrderFact(oid)
            P.fold_transition(row, version, snap, action, _words.get(to_b) or _word(to_b),
                              _words.get(role_b) or _word(role_b), at, details)
            return True
        if t.startswith(b'service_order.created"'):
            m = CREATED.match(raw)
            if m is None:
                return False
            g = m.groups()
            snap = _created_snap(g[2:])
            P.fold_static(self.row(g[0].decode()), int(g[1]), snap)
            return True
        if t.startswith(b'sla.deadline_fired"'):
            m = FIRED.match(raw)
            if m is None:
                return False
            oid_b, action_b, fired_b = m.groups()
            if action_b != b"penalty":
                return True
            end = len(raw)
            if raw[end - 2:end] != b"}}":
                return False
            details = json.loads(_fired_details(raw, m.end()))
            if not isinstance(details, dict):
                return False
            P.fold_penalty(self.row(oid_b.decode()), "penalty", _dt(fired_b), details)
            return True
        return False

    def _slow(self, raw: bytes) -> None:
        try:
            env = Envelope.from_bytes(raw)
        except (ValidationError, ValueError):
            self.invalid += 1
            return
        self.feed_envelope(env)

    def feed_envelope(self, env: Envelope) -> None:
        """The full path for one parsed envelope (validated by the registry)."""
        if env.type not in P.HANDLED_TYPES:
            self.ignored += 1
            return
        try:
            data = registry.parse_data(env)
            if env.type in P.CONSULT_TYPES:
                fact = P.consultation_fact(env.type, data)
                if fact is not None:
                    self.consultations.setdefault(fact[0], fact)
            elif env.type in P.CATALOGUE_TYPES:
                entry = P.catalogue_entry(data, env.occurred_at)
                key = entry[:2]
                if P.newer_entry(entry, self.catalogue.get(key)):
                    self.catalogue[key] = entry
            else:
                oid = P.order_id_of(env.type, data)
                row = self.rows.get(oid)
                fresh = row is None
                if fresh:
                    row = P.OrderFact(oid)
                P.fold_model(row, env.type, data)
                if fresh and (row.snap_version is not None or row.penalty_at is not None):
                    self.rows[oid] = row
        except (UnknownEventType, ValidationError, ValueError):
            self.invalid += 1
            return
        self.slow += 1


_NO_DETAILS: dict = {}
_DETAIL_ACTIONS = P.DETAIL_ACTIONS
_ID_END = 43  # '{"id":"' + 36 characters


# ---------------------------------------------------------------- the live consumer's decoder

class LiveEvent:
    """One event decoded from its canonical bytes for the live consumer: its id and
    type (for the inbox), the order it belongs to (None: nothing to fold, e.g. an SLA
    timer other than the 48 h penalty) and what to fold into that order's row."""

    __slots__ = ("id", "type", "order_id", "_fold", "_args")

    def __init__(self, id_: str, type_: str, order_id: str | None, fold=None, args: tuple = ()) -> None:
        self.id, self.type, self.order_id, self._fold, self._args = id_, type_, order_id, fold, args

    def fold(self, row: P.OrderFact) -> bool:
        return self._fold(row, *self._args)


_CANCELLED_BY = re.compile(rb',"cancelled_by":\[(?:"[^"\\]*"(?:,"[^"\\]*")*)?\]\}\}$')


def _fired_details(raw: bytes, start: int) -> bytes:
    """The ``details`` of a fired deadline: what follows it is ``}}`` or, since timers carry
    the facts that cancel them, ``,"cancelled_by":[...]}}`` (not read by the projection)."""
    i = raw.rfind(b',"cancelled_by":[', start)
    if i >= 0 and _CANCELLED_BY.match(raw, i):
        return raw[start:i]
    return raw[start:-2]


def _details(b: bytes):
    """The JSON value of ``details`` (an empty object without parsing)."""
    return _NO_DETAILS if b == b"{}" else json.loads(b.decode())


def _fold_penalty(row, at, details):
    return P.fold_penalty(row, "penalty", at, details)


def decode_live(raw: bytes) -> LiveEvent | None:
    """The live consumer's fast path: an order or SLA event in the canonical layout
    the producers write (the same anchored expressions as the rebuild, plus a check
    that the message ends as the layout does), decoded into a ``LiveEvent`` with
    everything it folds parsed up front (the order snapshot included). None for
    anything else: the caller validates it with the contracts (and parks it if they
    reject it). Like the rebuild, the fields the projection does not read are not
    validated."""
    try:
        return _decode_live(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _decode_live(raw: bytes) -> LiveEvent | None:
    if raw[-2:] != b"}}":
        return None
    t = raw[_TYPE_AT:_TYPE_AT + 28]
    if t.startswith(b'service_order.transitioned"'):
        m = TRANSITION_HEAD.match(raw)
        if m is None:
            return None
        oid_b, version_b, action_b, to_b, role_b, at_b = m.groups()
        action = _words.get(action_b) or _word(action_b)
        i = raw.find(_DETAILS, m.end())
        if i < 0:
            return None
        details = _details(raw[i + 12:-2])  # checked for every action (most are "{}")
        if not isinstance(details, dict):
            return None
        sm = SNAPSHOT.match(raw, m.end())
        if sm is None:
            return None
        return LiveEvent(raw[7:_ID_END].decode(), "service_order.transitioned", oid_b.decode(), P.fold_transition,
                         (int(version_b), _snap(sm.groups()), action, _words.get(to_b) or _word(to_b),
                          _words.get(role_b) or _word(role_b), _dt(at_b), details))
    if t.startswith(b'service_order.created"'):
        m = CREATED.match(raw)
        if m is None:
            return None
        g = m.groups()
        return LiveEvent(raw[7:_ID_END].decode(), "service_order.created", g[0].decode(), P.fold_static,
                         (int(g[1]), _created_snap(g[2:])))
    if t.startswith(b'sla.deadline_fired"'):
        m = FIRED.match(raw)
        if m is None:
            return None
        oid_b, action_b, fired_b = m.groups()
        details = _details(_fired_details(raw, m.end()))
        if not isinstance(details, dict):
            return None
        eid = raw[7:_ID_END].decode()
        if action_b != b"penalty":
            return LiveEvent(eid, "sla.deadline_fired", None)
        return LiveEvent(eid, "sla.deadline_fired", oid_b.decode(), _fold_penalty, (_dt(fired_b), details))
    return None
