"""Who may sign in to the console and which pages each role sees (docs/console.md § Access).

The console reads the services with its own operator credential, so it must not show a
person what their own role could not read from the services: arbitrators see the overview
and the arbitration pages (the queue and the orders' timelines, which the orders and
sla-timer APIs give them too) but not the delivery log, deadlines, routing, merchants'
figures or the services' /metrics (platform operators only); only arbitrators decide (the
orders service takes the decision with their own token)."""
from __future__ import annotations

OPERATOR, ARBITRATOR = "platform_operator", "arbitrator"
CONSOLE_ROLES = frozenset({OPERATOR, ARBITRATOR})

# page -> roles that see it, in menu order
PAGES: dict[str, frozenset[str]] = {
    "overview": frozenset({OPERATOR, ARBITRATOR}),
    "deadlines": frozenset({OPERATOR}),
    "arbitration": frozenset({OPERATOR, ARBITRATOR}),
    "routing": frozenset({OPERATOR}),
    "notifications": frozenset({OPERATOR}),
    "merchants": frozenset({OPERATOR}),
    "platform": frozenset({OPERATOR}),  # the services' /metrics answer platform operators only
}
DECIDERS = frozenset({ARBITRATOR})
# parts of a page shown to some of its readers only
ORDER_MESSAGES = frozenset({OPERATOR})  # notifier gives arbitrators no delivery log


def may_sign_in(role: str) -> bool:
    return role in CONSOLE_ROLES


def pages_for(role: str) -> list[str]:
    return [page for page, roles in PAGES.items() if role in roles]


def may_see(role: str, page: str) -> bool:
    return role in PAGES.get(page, frozenset())
