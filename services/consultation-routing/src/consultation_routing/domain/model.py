"""The routing's in-memory view of a manufacturer, a SKU and a queue (immutable values)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from functools import cached_property
from typing import NamedTuple

from consultation_routing.domain.categories import category_names

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

    @cached_property
    def _default_scope_text(self) -> str:
        # built once per enrollment (the value is immutable), not on every product page
        return (f"{PLATFORM_HOTLINE} 转 {self.phone_extension}：{self.name} 厂家服务直通车，"
                f"解答{category_names(self.categories)}商品的售前咨询与售后服务")

    def scope_text(self) -> str:
        """The product page's hover text: the manufacturer's own, or the default naming its
        categories in Chinese (``domain/categories.py``), never their codes."""
        return self.hover_text or self._default_scope_text


class Sku(NamedTuple):
    """A tuple of strings: the garbage collector stops tracking 100,000s of them."""

    sku: str
    manufacturer_id: str
    category: str


class OrderSku(NamedTuple):
    """A service order routing remembers: which SKU it (and its sales order) is about."""

    service_order_id: str
    sales_order_id: str
    sku: str
    created_at: datetime


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
    local: datetime  # the consultation's time in Beijing, where service hours are set
    sku: Sku | None = None
    manufacturer: Manufacturer | None = None
    queue: QueueState | None = None
    working_day: bool = True
    queue_fresh: bool = False
