"""Consultation billing packages by category (docs/routing.md, "Packages")."""
from __future__ import annotations

PACKAGE_1 = frozenset({
    "appliances", "phones", "digital", "computers", "office", "home", "furniture", "home_improvement", "kitchen",
    "jewellery", "luxury", "vehicles", "car_supplies", "health",
})
PACKAGE_2 = frozenset({
    "apparel", "underwear", "beauty", "shoes", "bags", "watches", "sports_outdoor", "mother_baby",
    "toys_instruments", "food_drink", "alcohol", "fresh_food", "books", "media", "digital_goods", "lottery",
    "travel", "top_up", "tickets",
})


def package_for(category: str | None, manufacturer_default: int) -> int:
    """The category's package; the manufacturer's own package when the category is not listed."""
    if category in PACKAGE_1:
        return 1
    if category in PACKAGE_2:
        return 2
    return manufacturer_default
