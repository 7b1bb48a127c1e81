"""The service's routes are listed with the order actions first (FastAPI tries routes in order,
so the most frequent requests find theirs early). That order is free only because no two
routes overlap: no route's path, with its parameters filled in, is also matched by another
route taking the same method. A route added later that overlaps another fails here."""
from __future__ import annotations

import re

from fastapi.routing import APIRoute

from orders.app import DEFINITION


def _routes():
    for router in DEFINITION.routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                yield route


def test_no_two_routes_of_the_service_overlap():
    routes = list(_routes())
    assert len(routes) > 50
    overlaps = []
    for r1 in routes:
        for r2 in routes:
            if r1 is r2 or not (r1.methods & r2.methods):
                continue
            for value in ("x1", "batch-audit", "attachments"):
                if r1.path_regex.match(re.sub(r"\{[^}]+\}", value, r2.path)):
                    overlaps.append((sorted(r1.methods), r1.path, r2.path))
    assert overlaps == []


def test_the_order_actions_come_first():
    prefixes = [router.prefix for router in DEFINITION.routers]
    assert prefixes[:2] == ["/v1/storefront", "/v1/merchant"]
