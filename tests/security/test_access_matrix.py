"""Every route × every kind of caller, generated from each service's live OpenAPI
document (so a route added later is attacked too), and the checks that keep that list
complete: every operation declares ``x-policy``, the only anonymous ones are health,
readiness and the token endpoint, and no route hides from the document."""
from __future__ import annotations

from collections import Counter

import httpx
import pytest

from shared.access import route_policies
from tests.security import matrix
from tests.security.platform import REPORT, SERVICES

SIZES: dict[str, tuple[int, int]] = {}  # service -> (operations, cells)
# Routes served but left out of the OpenAPI document on purpose, each attacked by its own test here.
HIDDEN = {("GET", "/metrics"): "test_admin_and_metrics_are_for_operators_only"}


@pytest.fixture(scope="module")
def operations(platform):
    return matrix.live_operations(platform)


def test_every_operation_declares_its_policy(operations):
    missing = [op.label for op in operations if not op.policy]
    assert not missing, f"operations without x-policy: {missing}"
    public = {(op.method, op.path) for op in operations if op.policy.get("public")}
    assert public <= matrix.PUBLIC_OPERATIONS, f"anonymous operations beyond health, ready and the token endpoint: " \
                                               f"{sorted(public - matrix.PUBLIC_OPERATIONS)}"
    webhooks = {(op.method, op.path) for op in operations if op.policy.get("webhook")}
    assert webhooks == matrix.WEBHOOK_OPERATIONS
    for op in operations:
        if not op.policy.get("public") and not op.policy.get("webhook"):
            assert op.spec.get("security"), f"{op.label}: no security requirement in OpenAPI"
            assert {"401", "403"} <= set(op.spec.get("responses", {})), f"{op.label}: 401/403 undocumented"


def test_the_token_endpoint_is_the_only_public_write(operations):
    token = [op for op in operations if (op.method, op.path) == ("POST", "/v1/oauth/token")]
    assert [op.service for op in token] == ["orders"]
    for service in SERVICES:
        mine = {(op.method, op.path) for op in operations if op.service == service and op.policy.get("public")}
        assert {("GET", "/health"), ("GET", "/ready")} <= mine, service


@pytest.mark.parametrize("service", list(SERVICES))
def test_no_route_hides_from_the_live_document(service, operations):
    """Every route the app serves is in its live OpenAPI (so in the matrix), or in HIDDEN."""
    from tests.helpers import SERVICES as APPS

    create_app, _settings = APPS[service]
    served = {key for key, policy in route_policies(create_app()).items() if key[0] != "HEAD"}
    documented = {(op.method, op.path) for op in operations if op.service == service}
    assert served - documented <= set(HIDDEN), f"routes missing from {service}'s OpenAPI: {served - documented}"


@pytest.mark.parametrize("service", list(SERVICES))
def test_access_matrix(service, platform, operations):
    ops = [op for op in operations if op.service == service]
    cells = matrix.run(platform, ops)
    SIZES[service] = (len(ops), len(cells))
    total_ops, total_cells = (sum(v[i] for v in SIZES.values()) for i in (0, 1))
    REPORT["access matrix"] = (f"{total_ops} operations x {len(matrix.PRINCIPALS)} principals = {total_cells} cells "
                               f"({', '.join(f'{s} {o}x{len(matrix.PRINCIPALS)}' for s, (o, _c) in SIZES.items())})")
    print(f"\n{service}: {len(ops)} operations x {len(matrix.PRINCIPALS)} principals = {len(cells)} cells, "
          f"answers {dict(sorted(Counter(c.status for c in cells).items()))}")
    foreign = Counter(c.status for c in cells if matrix.is_foreign(c.op, c.principal))
    print(f"  ownership probes (other merchant / other customer with a valid body): {dict(sorted(foreign.items()))}")
    bad = [c for c in cells if not c.ok]
    report = "\n".join(f"  {c.op.method} {c.op.path} as {c.principal}: got {c.status}, expected {c.expected}"
                       f"  {c.detail}" for c in bad)
    if bad:
        pytest.fail(f"{len(bad)} of {len(cells)} cells of {service}'s access matrix are wrong:\n{report}", pytrace=False)


def test_admin_and_metrics_are_for_operators_only(platform):
    """/admin/* (clock, outbox, dead letters) and /metrics on every service: 401 anonymous
    and forged, 403 for a merchant (and the storefront), 200 for an operator."""
    forged = matrix.forged_tokens(platform)
    wrong = []
    with httpx.Client(timeout=30) as c:
        for service, base in platform.urls.items():
            for path in ("/metrics", "/admin/clock", "/admin/outbox", "/admin/dead-letters"):
                cases = [({}, 401), (platform.auth("merchant_a"), 403), (platform.auth("staff_all"), 403),
                         (platform.auth("storefront", "sec-c1"), 403), (platform.auth("arbitrator"), 403),
                         (platform.auth("operator"), 200)]
                cases += [({"Authorization": f"Bearer {tok}"}, 401) for tok in forged.values()]
                for headers, want in cases:
                    got = c.get(base + path, headers=headers).status_code
                    if got != want:
                        wrong.append(f"{service} GET {path} with {headers or 'no token'}: {got} (want {want})")
    assert not wrong, "\n".join(wrong)
