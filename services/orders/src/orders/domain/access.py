"""Who may see and do what (docs/lifecycle.md): pure checks on a principal and an order."""
from __future__ import annotations

from orders.domain.modes import party_for
from orders.domain.states import TRANSITIONS, allowed_actions
from shared.auth import Principal
from shared.errors import ApiError

STEP_PERMISSION = {"audit": "audit", "receipt": "process", "process": "process"}


_PARTY = {"storefront": "customer", "merchant_main": "merchant", "merchant_staff": "merchant",
          "platform_operator": "platform", "arbitrator": "arbitrator"}


def party_of(p: Principal) -> str:
    return _PARTY[p.role]


_PARTIES: dict[str, frozenset[str] | None] = {}


def _action_parties(action: str) -> frozenset[str] | None:
    """The parties that may do ``action`` in some state (``handler`` stands for merchant and
    platform); None for an action the table does not know. Computed once per action."""
    if action not in _PARTIES:
        rules = [r for (_s, a), r in TRANSITIONS.items() if a == action]
        parties: set[str] = set()
        for r in rules:
            parties |= r.parties
            if "handler" in r.parties:
                parties |= {"merchant", "platform"}
        _PARTIES[action] = frozenset(parties) if rules else None
    return _PARTIES[action]


def can_see(p: Principal, order) -> bool:
    if p.role == "storefront":
        return p.customer_id is not None and order.customer_id == p.customer_id
    if p.is_merchant:
        if order.merchant_id != p.merchant_id:
            return False
        return p.role == "merchant_main" or order.category in p.categories
    return True  # platform operators and arbitrators see every merchant's orders


def not_found(order_id: str) -> ApiError:
    return ApiError(404, "order_not_found", f"no service order {order_id}")


def check_action(p: Principal, order, action: str) -> None:
    """Raise 403 (wrong party / permission) or 409 (not allowed in this state)."""
    party = party_of(p)
    parties = _action_parties(action)
    if parties is None:
        raise ApiError(404, "unknown_action", f"no action {action}")
    if party not in parties:
        raise ApiError(403, "forbidden", f"a {p.role} may not {action}")
    rule = TRANSITIONS.get((order.state, action))
    if rule is None or (action == "register_receipt" and order.state == "arbitration"
                        and order.locked_from != "awaiting_receipt"):
        raise ApiError(409, "action_not_allowed",
                       f"{action} is not allowed while the order is {order.state}",
                       {"state": order.state, "allowed_actions": allowed_actions(order.state)})
    if party in rule.parties:
        return
    if "handler" not in rule.parties or party not in ("merchant", "platform"):
        raise ApiError(403, "forbidden", f"a {p.role} may not {action} in state {order.state}")
    responsible = party_for(order.mode, rule.step)
    if responsible != party:
        raise ApiError(403, "not_responsible",
                       f"in {order.mode} mode the {responsible} does this step ({rule.step})")
    if p.role == "merchant_staff":
        if rule.step == "assign":
            raise ApiError(403, "forbidden", "only the merchant's main account assigns orders")
        need = STEP_PERMISSION.get(rule.step)
        if need and need not in p.permissions:
            raise ApiError(403, "missing_permission", f"{action} needs the {need} permission")
        if rule.step == "audit" and action.startswith("audit.") and order.handler_id != p.subject:
            raise ApiError(403, "not_handler", "only the staff member who holds the order may audit it")
