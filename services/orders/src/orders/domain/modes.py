"""Fulfilment modes (docs/lifecycle.md): who does each step, and what executes automatically."""
from __future__ import annotations

MODES = ("platform", "customer_contact", "full_manufacturer", "pop_self_service")

# step → party in charge ("merchant" or "platform"). ``assign``/``service`` follow the audit owner.
RESPONSIBILITY: dict[str, dict[str, str]] = {
    "platform":          {"assign": "platform", "audit": "platform", "receipt": "platform",
                          "process": "platform", "service": "platform"},
    "customer_contact":  {"assign": "merchant", "audit": "merchant", "receipt": "platform",
                          "process": "merchant", "service": "merchant"},
    "full_manufacturer": {"assign": "merchant", "audit": "merchant", "receipt": "merchant",
                          "process": "merchant", "service": "merchant"},
    "pop_self_service":  {"assign": "merchant", "audit": "merchant", "receipt": "merchant",
                          "process": "merchant", "service": "merchant"},
}

# Who executes a refund / exchange decided by the handler, and what happens to the old item.
EXECUTION = {
    "platform": {"executed_by": "platform", "disposal": "rma_to_manufacturer", "exchange_auto_approved": False},
    "customer_contact": {"executed_by": "platform", "disposal": "rma_to_manufacturer",
                         "exchange_auto_approved": False},
    "full_manufacturer": {"executed_by": "platform", "disposal": "manufacturer_keeps_sends_new_under_rma",
                          "exchange_auto_approved": False},
    # POP: a refund executes the moment the seller enters it; exchange orders are approved automatically.
    "pop_self_service": {"executed_by": "merchant", "disposal": "seller", "exchange_auto_approved": True},
}


def party_for(mode: str, step: str) -> str:
    return RESPONSIBILITY[mode][step]


def effective_mode(merchant_mode: str, category_modes: dict[str, str], category: str,
                   served_by_platform: bool) -> tuple[str, bool]:
    """(mode, on_behalf): a merchant that cannot serve is served by the platform on its behalf."""
    if served_by_platform:
        return "platform", True
    return category_modes.get(category, merchant_mode), False


def return_address(mode: str, merchant_address: str, platform_address: str) -> str:
    """Where the customer sends the item back: whoever does the mode's receipt step receives it
    (the platform warehouse in ``platform`` and ``customer_contact`` mode, else the merchant)."""
    return platform_address if party_for(mode, "receipt") == "platform" else merchant_address
