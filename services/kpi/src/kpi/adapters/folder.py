"""The rebuild's per-event engine (``kpi replay``): raw envelopes folded into order facts,
consultation facts and catalogue entries in memory.

Every message is decoded by the shared codec (``shared.events``) exactly as the live
consumer decodes it — an envelope or data the contracts refuse is counted ``invalid`` and
left out (the consumer parks it), a type the projection does not read ``ignored`` — and
folded by the projection (``kpi.domain.projection``), the rules the live consumer applies:
the rebuild and the live figures are the same by construction. Event types the projection
does not read are skipped from the envelope's head, without decoding their data.
"""
from __future__ import annotations

from kpi.domain import projection as P
import shared.contracts  # noqa: F401 - registers the event types
from shared.events import DecodeError, Envelope, decode_head, registry


class Folder:
    """Folds envelopes (bytes) into ``rows`` (order id → ``OrderFact``), ``consultations``
    (fact id → consultation fact) and ``catalogue`` ((merchant, SKU) → the newest entry).
    Counts: ``slow`` events folded one by one through the codec (beside the columnar
    engine's bulk fold, reported as ``fast``), ``invalid``, ``ignored``."""

    def __init__(self) -> None:
        self.rows: dict[str, P.OrderFact] = {}
        self.consultations: dict[str, tuple] = {}
        self.catalogue: dict[tuple[str, str], tuple] = {}  # (merchant, SKU) → the newest entry (``P.newer_entry``)
        self.slow = self.invalid = self.ignored = 0

    def stats(self) -> dict:
        return {"fast": 0, "slow": self.slow, "invalid": self.invalid, "ignored": self.ignored,
                "orders": len(self.rows), "consultation_facts": len(self.consultations),
                "catalogue_skus": len(self.catalogue)}

    def feed(self, raw: bytes) -> None:
        try:
            head = decode_head(raw)
            if head.type not in P.HANDLED_TYPES:
                self.ignored += 1
                return
            env = registry.decode_data(head)
        except DecodeError:
            self.invalid += 1
            return
        self.feed_envelope(env)

    def feed_envelope(self, env: Envelope) -> None:
        """Fold one decoded envelope (its data decoded by the registered contract)."""
        if env.type not in P.HANDLED_TYPES:
            self.ignored += 1
            return
        data = env.data
        try:
            if not P.relevant(env.type, data):
                self.slow += 1
                return
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
        except (ValueError, OverflowError):  # NaiveTime included: what the live consumer parks
            self.invalid += 1
            return
        self.slow += 1


__all__ = ["Folder"]
