"""No source file reaches into another package's internals: where the code needs a hook into
uvicorn, Starlette, FastAPI, aiokafka or SQLAlchemy it uses a public one (a documented
option, a middleware, a subclass meant for it), so an upgrade cannot silently break it.

The scan parses every module under ``services/*/src`` and ``shared/src`` (tests are not
scanned) and reports:

- importing a private module or name of another package (``from starlette._utils import x``);
- reading, assigning or deleting a private attribute (``x._name``, not ``__dunder__``), or
  naming one in ``getattr``/``setattr``/``hasattr``/``delattr``, unless ``x`` is ``self``,
  ``cls``, ``super()``, or a name bound to the project's own code in that module (a class or
  function it defines, a module or name it imports from one of the project's packages):
  a local variable may hold anything, so a private attribute read through it is reported;
- assigning ``__class__`` (turning an object into another class at run time);
- writing ``scope["route"]`` (the route Starlette/FastAPI record after matching, which
  middleware may read: writing it fakes the framework's own bookkeeping).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = sorted(ROOT.glob("services/*/src")) + [ROOT / "shared/src"]
OWN_PACKAGES = frozenset(p.name for src in SOURCE_ROOTS for p in src.iterdir() if (p / "__init__.py").exists())

# Underscore names that are public API, with the reason.
PUBLIC_UNDERSCORED = {
    # collections.namedtuple / typing.NamedTuple: documented methods and attributes, prefixed
    # with an underscore only so they cannot clash with field names.
    "_fields": "namedtuple API", "_make": "namedtuple API", "_replace": "namedtuple API",
    "_asdict": "namedtuple API", "_field_defaults": "namedtuple API",
    # sqlalchemy.engine.Row: documented named-tuple-like API, underscored for the same reason.
    "_mapping": "SQLAlchemy Row API", "_tuple": "SQLAlchemy Row API", "_t": "SQLAlchemy Row API",
}
ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) \
        and name not in PUBLIC_UNDERSCORED


def _own_module(module: str | None, level: int) -> bool:
    return level > 0 or (module is not None and module.split(".")[0] in OWN_PACKAGES)


def own_names(tree: ast.Module) -> set[str]:
    """Names the module binds to the project's own code: what it defines (classes and
    functions at any depth, module-level assignments) and what it imports from the project."""
    names = {"self", "cls"}
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _own_module(alias.name, 0):
                    names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _own_module(node.module, node.level):
            names.update(alias.asname or alias.name for alias in node.names)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _is_own(base: ast.expr, own: set[str]) -> bool:
    if isinstance(base, ast.Attribute) and isinstance(base.value, (ast.Name, ast.Attribute)):
        # a module of the project reached through its package: ``shared.events._x``
        root = base.value
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and root.id in OWN_PACKAGES and root.id in own
    if isinstance(base, ast.Name):
        return base.id in own
    if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super":
        return True
    return False


def _is_scope(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return "scope" in name


def findings(source: str, filename: str = "<snippet>") -> list[str]:
    """What the scan reports in one module, as ``file:line: what``."""
    tree = ast.parse(source, filename=filename)
    own = own_names(tree)
    out: list[str] = []

    def report(node: ast.AST, what: str) -> None:
        out.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if isinstance(node, ast.ImportFrom) and _own_module(module, node.level):
                continue
            for alias in node.names:
                path = [*(module or "").split("."), *alias.name.split(".")]
                hidden = [p for p in path if _private(p)]
                if hidden and not (isinstance(node, ast.Import) and _own_module(alias.name, 0)):
                    report(node, f"imports private {'.'.join(p for p in path if p)}")
        elif isinstance(node, ast.Attribute):
            if _private(node.attr) and not _is_own(node.value, own):
                report(node, f"private attribute {ast.unparse(node)}")
            if node.attr == "__class__" and isinstance(node.ctx, ast.Store):
                report(node, f"assigns {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ATTRIBUTE_FUNCTIONS \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str):
            name = node.args[1].value
            if _private(name) and not _is_own(node.args[0], own):
                report(node, f"private attribute {name!r} through {node.func.id}()")
            if name == "__class__" and node.func.id == "setattr":
                report(node, "assigns __class__ through setattr()")
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)) \
                and isinstance(node.slice, ast.Constant) and node.slice.value == "route" and _is_scope(node.value):
            report(node, f"writes {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_scope(node.func.value) \
                and node.func.attr in ("setdefault", "__setitem__", "update", "pop") \
                and (any(isinstance(a, ast.Constant) and a.value == "route" for a in node.args[:1])
                     or any(k.arg == "route" for k in node.keywords)):
            report(node, f"writes {ast.unparse(node)}")
    return out


def source_files() -> list[Path]:
    return sorted(p for src in SOURCE_ROOTS for p in src.rglob("*.py") if "tests" not in p.relative_to(src).parts)


def test_the_sources_reach_into_no_other_package():
    found = [f for path in source_files()
             for f in findings(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert not found, "private internals used:\n" + "\n".join(found)


# ------------------------------------------------------------------ the scanner itself

@pytest.mark.parametrize("snippet,what", [
    ("async def f(consumer):\n    await consumer._coordinator.fetch_committed_offsets({})", "consumer._coordinator"),
    ("def f(send):\n    send.__self__.transport = 1\n    return send.__self__._flow", "_flow"),
    ("import uvicorn\nuvicorn.server._ShutdownCounter", "uvicorn.server._ShutdownCounter"),
    ("def f(relay):\n    relay._wake.set()", "relay._wake"),
    ("from starlette._utils import is_async_callable", "imports private starlette._utils.is_async_callable"),
    ("from aiokafka.consumer.group_coordinator import _Coordinator", "imports private"),
    ("import uvicorn._types", "imports private uvicorn._types"),
    ("class A:\n    def f(self):\n        self.other._secret = 1", "self.other._secret"),
    ("def f(app, Other):\n    app.__class__ = Other", "assigns app.__class__"),
    ("def f(app, Other):\n    setattr(app, '__class__', Other)", "__class__ through setattr"),
    ("def f(o):\n    return getattr(o, '_private')", "'_private' through getattr"),
    ("def f(scope, r):\n    scope['route'] = r", "writes scope['route']"),
    ("def f(self, r):\n    self.scope['route'] = r", "writes self.scope['route']"),
    ("def f(scope, r):\n    scope.setdefault('route', r)", "writes scope.setdefault"),
    ("def f(scope, r):\n    scope.update(route=r)", "writes scope.update"),
])
def test_the_scan_reports_a_planted_use(snippet, what):
    found = findings(snippet)
    assert len(found) == 1 and what in found[0], found


@pytest.mark.parametrize("snippet", [
    "class A:\n    def f(self):\n        return self._x\n    @classmethod\n    def g(cls):\n        return cls._y",
    "class A:\n    def f(self):\n        return super()._x",
    "class _Hidden:\n    _cache = {}\ndef f():\n    return _Hidden._cache",
    "from shared.consumer import EventConsumer\nEventConsumer._defaults",
    "import shared.events\nshared.events._REGISTRY",
    "from . import sibling\nsibling._helper()",
    "from shared.outbox import _private_helper\nfrom .model import _x",
    "from typing import NamedTuple\nclass P(NamedTuple):\n    a: int\nP._fields, P._make([1])",
    "def f(p):\n    return p._replace(a=1)._asdict()",
    "def f(row):\n    return row._mapping['id'], row._tuple()",
    "def f(scope):\n    return scope.get('route'), scope['route']",
    "def f(o):\n    return o.__dict__, type(o).__name__",
])
def test_the_scan_allows_own_code_and_public_names(snippet):
    assert findings(snippet) == []
