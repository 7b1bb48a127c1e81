"""The small expression language the KPI rules are written in (``rules.py``), and its
compiler to Python. The same expressions compile to SQL for the columnar rebuild
(``kpi.adapters.columnar``), so each rule is written once and both engines follow it.

Semantics, identical in both engines:

- a value may be missing (``None`` / SQL ``NULL``);
- a test with a missing operand is **false**, never "unknown" (``Within``, ``Exceeds``,
  ``Cmp``, ``In``, ``StartsWith``, ``Truthy``), so ``Not``, ``All`` and ``AnyOf`` are
  two-valued and a ``Case`` takes its first true branch;
- ``Earliest`` ignores missing times; ``Default`` replaces a missing value;
- ``Detail`` reads one key of an event's ``details`` with one of the parsers both engines
  implement (``PARSERS``); a value the parser does not accept is missing.

The nodes are frozen dataclasses: rules are data, compared and printed as such.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation


class Expr:
    """A node of a rule expression."""

    __slots__ = ()

    def children(self) -> tuple["Expr", ...]:
        return ()

    def walk(self):
        yield self
        for c in self.children():
            yield from c.walk()


def _plain(v):
    # StrEnum members (the contracts' vocabulary) are str: keep the plain value, so the
    # generated code and SQL print it as a literal
    return str(v) if isinstance(v, str) else v


@dataclass(frozen=True)
class Field(Expr):
    """A field of the order fact (``OrderFact``), of the event being folded, or a value
    derived before the counters (``rules.DERIVED``)."""

    name: str


@dataclass(frozen=True)
class Lit(Expr):
    value: object

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _plain(self.value))


@dataclass(frozen=True)
class Detail(Expr):
    """``details[key]`` of the event, parsed by ``PARSERS[parse]``."""

    key: str
    parse: str

    def __post_init__(self) -> None:
        if self.parse not in PARSERS:
            raise ValueError(f"unknown detail parser {self.parse!r}")


@dataclass(frozen=True)
class Present(Expr):
    x: Expr

    def children(self):
        return (self.x,)


@dataclass(frozen=True)
class Within(Expr):
    """Both times present and ``end - start <= limit`` (exactly the limit is on time)."""

    start: Expr
    end: Expr
    limit: timedelta

    def children(self):
        return (self.start, self.end)


@dataclass(frozen=True)
class Exceeds(Expr):
    """Both times present and ``end - start > limit``."""

    start: Expr
    end: Expr
    limit: timedelta

    def children(self):
        return (self.start, self.end)


CMP_OPS = ("==", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Cmp(Expr):
    op: str
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        if self.op not in CMP_OPS:
            raise ValueError(f"unknown comparison {self.op!r}")

    def children(self):
        return (self.left, self.right)


@dataclass(frozen=True)
class In(Expr):
    x: Expr
    values: frozenset

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", frozenset(_plain(v) for v in self.values))

    def children(self):
        return (self.x,)


@dataclass(frozen=True)
class StartsWith(Expr):
    x: Expr
    prefix: str

    def children(self):
        return (self.x,)


@dataclass(frozen=True)
class All(Expr):
    items: tuple[Expr, ...]

    def children(self):
        return self.items


@dataclass(frozen=True)
class AnyOf(Expr):
    items: tuple[Expr, ...]

    def children(self):
        return self.items


@dataclass(frozen=True)
class Not(Expr):
    x: Expr

    def children(self):
        return (self.x,)


@dataclass(frozen=True)
class Truthy(Expr):
    """A flag that is set and true (a missing flag is false)."""

    x: Expr

    def children(self):
        return (self.x,)


@dataclass(frozen=True)
class Default(Expr):
    x: Expr
    value: object

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _plain(self.value))

    def children(self):
        return (self.x,)


@dataclass(frozen=True)
class Earliest(Expr):
    items: tuple[Expr, ...]

    def children(self):
        return self.items


@dataclass(frozen=True)
class Case(Expr):
    """The value of the first branch whose condition holds, else ``otherwise``."""

    branches: tuple[tuple[Expr, Expr], ...]
    otherwise: Expr = field(default_factory=lambda: Lit(None))

    def children(self):
        return tuple(x for b in self.branches for x in b) + (self.otherwise,)


@dataclass(frozen=True)
class Concat(Expr):
    """``prefix`` followed by the value as text (an integer in decimal)."""

    prefix: str
    x: Expr

    def children(self):
        return (self.x,)


PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Period(Expr):
    """The Beijing period holding a time: ``day`` (ISO date), ``week`` (its Monday, ISO),
    ``month`` (``YYYY-MM``)."""

    unit: str
    at: Expr

    def __post_init__(self) -> None:
        if self.unit not in PERIODS:
            raise ValueError(f"unknown period {self.unit!r}")

    def children(self):
        return (self.at,)


@dataclass(frozen=True)
class SecondsAfter(Expr):
    """Whole seconds from ``start`` to ``end``; 0 when ``end`` is not after ``start``."""

    start: Expr
    end: Expr

    def children(self):
        return (self.start, self.end)


def all_of(*items: Expr) -> All:
    return All(tuple(items))


def any_of(*items: Expr) -> AnyOf:
    return AnyOf(tuple(items))


def case(*branches: tuple[Expr, Expr], otherwise: Expr | object = None) -> Case:
    return Case(tuple(branches), otherwise if isinstance(otherwise, Expr) else Lit(otherwise))


def fields_of(*exprs: Expr) -> list[str]:
    """The field names the expressions read, in first-use order."""
    seen: dict[str, None] = {}
    for e in exprs:
        for n in e.walk():
            if isinstance(n, Field):
                seen.setdefault(n.name)
    return list(seen)


# ---------------------------------------------------------------- detail parsers (Python side)

def parse_text(v) -> str | None:
    """A string (anything else is missing)."""
    return v if isinstance(v, str) else None


def parse_amount(v) -> int | None:
    """A money amount as integer cents: '199.00' / 199 / Decimal → 19900; missing when not a
    finite number."""
    if v is None or isinstance(v, bool):
        return None
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    return int((d * 100).to_integral_value())


def parse_count(v) -> int | None:
    """An integer, or a string of digits (a star rating written either way)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


_INT_MAX = 999_999_999


def parse_int(v) -> int | None:
    """A JSON integer of at most 9 digits (both engines read no larger ones)."""
    if isinstance(v, int) and not isinstance(v, bool) and -_INT_MAX <= v <= _INT_MAX:
        return v
    return None


PARSERS = {"text": parse_text, "amount": parse_amount, "count": parse_count, "int": parse_int}


# ---------------------------------------------------------------- compiling to Python

_SECOND = timedelta(seconds=1)


def _earliest(*times: datetime | None) -> datetime | None:
    best = None
    for t in times:
        if t is not None and (best is None or t < best):
            best = t
    return best


def _seconds_after(start: datetime, end: datetime) -> int:
    s = (end - start) // _SECOND
    return s if s > 0 else 0


class ToPython:
    """Compiles expressions to Python source. ``names`` maps field names to the local
    names the generated function holds them in; constants (limits, sets) go into the
    namespace ``ns`` the source is executed in, which also provides ``day_key``,
    ``week_key`` and ``month_key`` (``projection.py``)."""

    def __init__(self, names: dict[str, str], ns: dict, details: str = "details",
                 present: frozenset[str] = frozenset()) -> None:
        # ``present``: fields that always hold a value (the decoded event's action, states, role)
        self.names, self.ns, self.details, self.present = names, ns, details, present
        # constants are shared by every function compiled into one namespace
        self._consts: dict[tuple, str] = ns.setdefault("_constants", {})
        self._temps = 0
        ns.update(_earliest=_earliest, _seconds_after=_seconds_after,
                  **{f"_parse_{k}": f for k, f in PARSERS.items()})

    def const(self, value) -> str:
        key = (type(value), value)
        name = self._consts.get(key)
        if name is None:
            name = self._consts[key] = f"_k{len(self._consts)}"
            self.ns[name] = value
        return name

    def _temp(self) -> str:
        self._temps += 1
        return f"_t{self._temps}"

    def _operand(self, e: Expr) -> tuple[str, str | None]:
        """(source of the value, source of a test that it is present, or None when it
        always is); a composite value is computed once (``:=``)."""
        if isinstance(e, Lit):
            return repr(e.value), (None if e.value is not None else "False")
        if isinstance(e, Field):
            n = self.names[e.name]
            return n, (None if e.name in self.present else f"{n} is not None")
        if isinstance(e, Default) and e.value is not None:
            return self(e), None
        t = self._temp()
        return t, f"({t} := {self(e)}) is not None"

    def _guarded(self, parts: list[tuple[str, str | None]], test: str) -> str:
        guards = [g for _v, g in parts if g is not None]
        return "(" + " and ".join(guards + [test]) + ")"

    def __call__(self, e: Expr, where: bool = False) -> str:  # noqa: C901 - one branch per node type
        """Python of ``e``; ``where``: used only as a condition (``if``), where any true value
        will do."""
        if isinstance(e, Field):
            return self.names[e.name]
        if isinstance(e, Lit):
            return repr(e.value)
        if isinstance(e, Detail):
            return f"_parse_{e.parse}({self.details}.get({e.key!r}))"
        if isinstance(e, Present):
            v, g = self._operand(e.x)
            return f"({g})" if g else "True"
        if isinstance(e, (Within, Exceeds)):
            (s, gs), (t, gt) = self._operand(e.start), self._operand(e.end)
            op = "<=" if isinstance(e, Within) else ">"
            return self._guarded([(s, gs), (t, gt)], f"{t} - {s} {op} {self.const(e.limit)}")
        if isinstance(e, Cmp):
            (a, ga), (b, gb) = self._operand(e.left), self._operand(e.right)
            return self._guarded([(a, ga), (b, gb)], f"{a} {e.op} {b}")
        if isinstance(e, In):
            return f"({self(e.x)} in {self.const(e.values)})"
        if isinstance(e, StartsWith):
            v, g = self._operand(e.x)
            return self._guarded([(v, g)], f"{v}.startswith({e.prefix!r})")
        if isinstance(e, All):
            return "(" + " and ".join(self(x, where) for x in e.items) + ")" if e.items else "True"
        if isinstance(e, AnyOf):
            return "(" + " or ".join(self(x, where) for x in e.items) + ")" if e.items else "False"
        if isinstance(e, Not):
            return f"(not {self(e.x, True)})"
        if isinstance(e, Truthy):
            return self(e.x) if where else f"(True if {self(e.x)} else False)"
        if isinstance(e, Default):
            v, g = self._operand(e.x)
            return f"({v} if {g} else {e.value!r})" if g else v
        if isinstance(e, Earliest):
            return "_earliest(" + ", ".join(self(x) for x in e.items) + ")"
        if isinstance(e, Case):
            out = self(e.otherwise)
            for cond, val in reversed(e.branches):
                out = f"({self(val)} if {self(cond, True)} else {out})"
            return out
        if isinstance(e, Concat):
            return f"({e.prefix!r} + str({self(e.x)}))"
        if isinstance(e, Period):
            return f"{e.unit}_key({self(e.at)})"
        if isinstance(e, SecondsAfter):
            return f"_seconds_after({self(e.start)}, {self(e.end)})"
        raise TypeError(f"cannot compile {e!r}")
