"""Services never import each other; shared never imports a service."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "orders": ROOT / "services/orders/src/orders",
    "consultation_routing": ROOT / "services/consultation-routing/src/consultation_routing",
    "sla_timer": ROOT / "services/sla-timer/src/sla_timer",
    "kpi": ROOT / "services/kpi/src/kpi",
    "notifier": ROOT / "services/notifier/src/notifier",
    "console": ROOT / "services/console/src/console",
    "shared": ROOT / "shared/src/shared",
}


def imported_top_levels(package_dir: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in package_dir.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_cross_service_imports(package):
    imports = imported_top_levels(PACKAGES[package])
    forbidden = {p for p in PACKAGES if p not in (package, "shared")}
    offenders = {name: sorted(files) for name, files in imports.items() if name in forbidden}
    assert not offenders, f"{package} imports other services: {offenders}"


def test_every_service_declares_a_policy_on_every_route_and_refuses_one_added_later():
    """Default-deny is a property of the shared runtime: each real app passes the check at
    construction, and a route slipped in afterwards stops the service from starting."""
    import asyncio

    from asgi_lifespan import LifespanManager

    from shared.access import UndeclaredAccess, enforce
    from tests.helpers import SERVICES

    for name, (create_app, _settings) in SERVICES.items():
        app = create_app()
        assert enforce(app), name

    app = SERVICES["kpi"][0]()

    @app.get("/v1/sneaky")
    async def sneaky() -> dict:
        return {}

    async def start() -> None:
        async with LifespanManager(app):
            pass

    with pytest.raises(UndeclaredAccess, match="GET /v1/sneaky"):
        asyncio.run(start())
