"""Money and freight (docs/lifecycle.md): CNY Decimals with exactly two places."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cny(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def goods_amount(amount_paid_for_line: Decimal, quantity: int, purchased_quantity: int) -> Decimal:
    """What was paid for the quantity in service (the line's amount pro rata)."""
    if quantity >= purchased_quantity:
        return cny(amount_paid_for_line)
    return cny(Decimal(amount_paid_for_line) * quantity / purchased_quantity)


def return_freight_payer(problem_type: str, customer_level: str) -> str:
    """Customer → merchant freight: quality → merchant; otherwise the customer,
    except a diamond customer, whose freight the platform pays."""
    if problem_type == "quality":
        return "merchant"
    return "platform" if customer_level == "diamond" else "customer"


OUTBOUND_FREIGHT_PAYER = "merchant"  # exchange and return-original shipments


def initial_freight_to_return(declared: Decimal, problem_type: str, customer_level: str) -> Decimal:
    """待返运费: the declared freight is returned to the customer unless the customer bears it."""
    return cny(declared) if return_freight_payer(problem_type, customer_level) != "customer" else cny(0)


def refund_limit(goods: Decimal, freight_to_return: Decimal) -> Decimal:
    return cny(goods + freight_to_return)
