"""Who may read an order's timers: pure checks on a principal and the order's merchant
and category (kept on the timers, from the order events)."""
from __future__ import annotations

from shared.auth import Principal

# A staff account sees an order's timers when it may work on the order: audit or process.
STAFF_PERMISSIONS = frozenset({"audit", "process"})


def staff_has_rights(p: Principal) -> bool:
    return bool(STAFF_PERMISSIONS & p.permissions)


def can_read_timers(p: Principal, merchant_id: str | None, category: str | None) -> bool:
    """Platform roles read every order's timers; a merchant account only its own orders'
    (an order whose merchant is not known here is nobody's); a staff account with
    categories only orders of those categories (when the order's category is known)."""
    if p.is_platform:
        return True
    if not p.is_merchant or merchant_id is None or p.merchant_id != merchant_id:
        return False
    if p.role == "merchant_main":
        return True
    if not staff_has_rights(p):
        return False
    return not p.categories or category is None or category in p.categories
