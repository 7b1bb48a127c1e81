"""The routing's in-memory view of a manufacturer, a SKU and a queue (immutable values)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import NamedTuple

PLATFORM_HOTLINE = "400-606-5500"

# Defaults per channel, Beijing time, [start, end): phone 9–18, IM 9–21.
DEFAULT_HOURS: dict[str, tuple[time, time]] = {"phone": (time(9), time(18)), "im": (time(9), time(21))}


@dataclass(frozen=True)
class Manufacturer:
    """A manufacturer's service-express enrollment.

    Service hours apply on working days of the business calendar (China's
    holidays, with adjusted working days 调休 counted as working days). On
    weekends and holidays the manufacturer is closed unless
    ``serve_non_working_days`` is set, in which case the same hours apply every day."""

    id: str
    name: str
    categories: frozenset[str]
    hours: dict[str, tuple[time, time]]
    im_queue_id: str
    phone_extension: str
    min_agents: int = 1
    max_queue_length: int | None = None
    max_expected_wait_s: int | None = None
    serve_non_working_days: bool = False
    disqualified: bool = False
    package: int = 1
    hover_text: str | None = None

    def scope_text(self) -> str:
        if self.hover_text:
            return self.hover_text
        cats = "、".join(sorted(self.categories))
        return (f"{PLATFORM_HOTLINE} 转 {self.phone_extension}：{self.name} 厂家服务直通车，"
                f"解答{cats}商品的售前咨询与售后服务")


class Sku(NamedTuple):
    """A tuple of strings: the garbage collector stops tracking 100,000s of them."""

    sku: str
    manufacturer_id: str
    category: str


@dataclass(frozen=True)
class QueueState:
    agents_online: int
    queue_length: int
    expected_wait_s: int | None
    reported_at: datetime


@dataclass(frozen=True)
class Consultation:
    channel: str
    entry_point: str
    phase: str
    at: datetime
    sku: str | None = None
    customer_id: str | None = None
    sales_order_id: str | None = None
    service_order_id: str | None = None
    # The consultation's identity as the caller named it, qualified by the calling client
    # ("<client>/<id>"): every decision of one consultation gets the same decision id, so
    # it is billed and scored once. None: each call is a consultation of its own.
    consultation_id: str | None = None


@dataclass
class Facts:
    """What one decision looks at (resolved from the in-memory state)."""

    consultation: Consultation
    sku: Sku | None = None
    manufacturer: Manufacturer | None = None
    queue: QueueState | None = None
    working_day: bool = True
    queue_fresh: bool = False
    extra: dict = field(default_factory=dict)
