"""Every service has the same shape (README.md, "Repository layout": ``api/ → handlers/ →
domain/``, ``adapters/`` at the edge, ``entrypoints/`` for the command line and consumers),
and its domain is pure: rules as tables and functions, no framework, no database, no
broker, nothing of the layers around it."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("api", "handlers", "domain", "adapters", "entrypoints")
# frameworks, database and broker clients, network and process I/O
IMPURE = frozenset({"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "asyncpg", "aiokafka", "httpx",
                    "duckdb", "boto3", "prometheus_client", "asyncio", "subprocess", "socket"})


def _packages() -> list[Path]:
    return sorted(p.parent for p in ROOT.glob("services/*/src/*/__init__.py"))


def _id(p: Path) -> str:
    return p.name


def test_there_are_services():
    assert len(_packages()) >= 5


@pytest.mark.parametrize("package", _packages(), ids=_id)
def test_every_service_has_the_layers(package: Path):
    missing = [layer for layer in LAYERS if not (package / layer / "__init__.py").is_file()]
    assert not missing, f"{package.relative_to(ROOT)} lacks the packages {missing}"


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            out.append((node.lineno, "." * node.level + (node.module or "")))
    return out


@pytest.mark.parametrize("package", _packages(), ids=_id)
def test_the_domain_is_pure(package: Path):
    domain = package / "domain"
    if not domain.is_dir():
        pytest.skip("no domain package (test_every_service_has_the_layers)")
    outer = {f"{package.name}.{layer}" for layer in LAYERS if layer != "domain"}
    found = []
    for path in sorted(domain.rglob("*.py")):
        for line, module in _imports(path):
            top = module.split(".")[0]
            layer = ".".join(module.split(".")[:2])
            if top in IMPURE or layer in outer or module.startswith(".."):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not found, "domain modules import frameworks, I/O or outer layers:\n" + "\n".join(found)


def test_the_checks_see_a_violation(tmp_path: Path):
    """The import scan finds what it looks for (so the tests above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlalchemy as sa\nfrom fastapi import APIRouter\nfrom ..adapters import x\n"
                   "def f():\n    from aiokafka import AIOKafkaConsumer\n")
    assert [m for _l, m in _imports(bad)] == ["sqlalchemy", "fastapi", "..adapters", "aiokafka"]


# What may sit beside the layers at a package's root: the process entry, the app factory, its
# settings, its tables, the typed runtime parts, and (orders) the request schemas its API and
# handlers share. Anything else belongs to a layer.
ROOT_MODULES = frozenset({"__init__.py", "__main__.py", "app.py", "settings.py", "models.py", "parts.py",
                          "schemas.py"})


@pytest.mark.parametrize("package", _packages(), ids=_id)
def test_nothing_else_sits_at_the_package_root(package: Path):
    extra = sorted(p.name for p in package.glob("*.py") if p.name not in ROOT_MODULES)
    assert not extra, f"{package.relative_to(ROOT)}: {extra} belong in one of {LAYERS}"
