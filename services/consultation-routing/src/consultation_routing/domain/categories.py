"""Category codes → their Chinese names, for what customers read (the hover text).

Codes are the ones the catalogues, enrollments and billing packages use (lower case).
A code not listed here is shown as is: add it here when a new category is introduced."""
from __future__ import annotations

CATEGORY_NAMES: dict[str, str] = {
    # billing package 1
    "appliances": "家用电器",
    "phones": "手机",
    "digital": "数码",
    "computers": "电脑",
    "office": "办公",
    "home": "家居日用",
    "furniture": "家具",
    "home_improvement": "家装建材",
    "kitchen": "厨具",
    "jewellery": "珠宝首饰",
    "luxury": "奢侈品",
    "vehicles": "汽车",
    "car_supplies": "汽车用品",
    "health": "医药保健",
    # billing package 2
    "apparel": "服饰",
    "underwear": "内衣",
    "beauty": "美妆个护",
    "shoes": "鞋靴",
    "bags": "箱包",
    "watches": "钟表",
    "sports_outdoor": "运动户外",
    "mother_baby": "母婴",
    "toys_instruments": "玩具乐器",
    "food_drink": "食品饮料",
    "alcohol": "酒类",
    "fresh_food": "生鲜",
    "books": "图书",
    "media": "音像",
    "digital_goods": "数字商品",
    "lottery": "彩票",
    "travel": "旅行",
    "top_up": "充值",
    "tickets": "票务",
    # further codes of the demo data and catalogues
    "tv": "电视",
    "tvs": "电视",
    "accessories": "手机配件",
}


def category_name(code: str) -> str:
    """The Chinese name of a category code; the code itself when it has none."""
    return CATEGORY_NAMES.get(code, code)


def category_names(codes) -> str:
    """Names joined with 、, in code order, each name once (tv and tvs are both 电视)."""
    out: list[str] = []
    for code in sorted(codes):
        name = category_name(code)
        if name not in out:
            out.append(name)
    return "、".join(out)
