"""Answering one consultation from the in-memory routing view (docs/routing.md, "The
decision"): no database or network call here. Whatever goes wrong (state too old, a bug,
bad data) the answer is the platform queue with reason ``degraded``, never an error.

The decision itself is ``decision.decide`` (the fallback rules); this module gathers its
facts from the view and shapes the answer."""
from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Protocol

from consultation_routing.domain.decision import decide, is_fresh
from consultation_routing.domain.model import Consultation, Facts, Manufacturer, QueueState, Sku
from shared.calendar import BusinessCalendar
from shared.clock import BEIJING

log = logging.getLogger(__name__)
# Decision ids of named consultations: uuid5 of the qualified consultation id in this namespace,
# the same on every replica and after a restart (KPI keeps one fact per decision id).
CONSULTATION_NAMESPACE = uuid.UUID("6f1d2c3e-9b7a-5e44-8c1f-2a9d0b7e5c31")


def decision_id_of(c: Consultation) -> str:
    if c.consultation_id is not None:
        return str(uuid.uuid5(CONSULTATION_NAMESPACE, c.consultation_id))
    # random (version 4) without a system call per request; ids need not be secret
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


class RoutingView(Protocol):
    """What the engine reads: the catalogue, enrollments and queues held in memory
    (``adapters.state.RoutingState``), and how old they are."""

    skus: dict[str, Sku]
    manufacturers: dict[str, Manufacturer]
    queues: dict[str, QueueState]

    def age(self) -> float: ...

    def order_sku(self, service_order_id: str | None, sales_order_id: str | None) -> str | None: ...


@dataclass(frozen=True)
class PlatformQueue:
    """The platform's own queue: the answer's fallback and every platform target."""

    hotline: str
    im_queue_id: str
    hover_text: str


class RoutingEngine:
    def __init__(self, view: RoutingView, platform: PlatformQueue, calendar: BusinessCalendar, *,
                 queue_ttl: timedelta, max_state_age_s: float) -> None:
        self.view = view
        self.platform = platform
        self.calendar = calendar
        self.queue_ttl = queue_ttl
        self.max_state_age_s = max_state_age_s
        self.working_days: dict[date, bool] = {}
        self.degraded_total = 0

    def is_working_day(self, day: date) -> bool:
        cached = self.working_days.get(day)
        if cached is None:
            if len(self.working_days) > 1000:
                self.working_days.clear()
            cached = self.working_days[day] = self.calendar.is_working_day(day)
        return cached

    def resolve(self, c: Consultation) -> Consultation:
        """The consultation about the SKU its service order (or else its sales order) names,
        when it names no catalogue SKU itself; unchanged otherwise (and on any failure)."""
        try:
            v = self.view
            if c.sku is not None and c.sku in v.skus:
                return c
            if c.service_order_id is None and c.sales_order_id is None:
                return c
            sku = v.order_sku(c.service_order_id, c.sales_order_id)
            # an unknown SKU the caller named stays, unless the order names one routing knows
            if sku is None or sku == c.sku or (c.sku is not None and sku not in v.skus):
                return c
            return replace(c, sku=sku)
        except Exception:  # noqa: BLE001 - route() answers whatever this returns
            log.exception("resolving a consultation's order failed")
            return c

    def route(self, c: Consultation) -> dict:
        """The answer (docs/routing.md, "The answer") as a dict of JSON values."""
        try:
            if self.view.age() > self.max_state_age_s:
                return self.answer(c, "platform", "degraded", None, None)
            return self._route(c)
        except Exception:  # noqa: BLE001 - the storefront must always get an answer
            self.degraded_total += 1
            log.exception("routing decision failed; answering the platform queue")
            return self.answer(c, "platform", "degraded", None, None)

    def _route(self, c: Consultation) -> dict:
        v = self.view
        sku = v.skus.get(c.sku) if c.sku else None
        m = v.manufacturers.get(sku.manufacturer_id) if sku else None
        q = v.queues.get(m.id) if m else None
        local = c.at.astimezone(BEIJING)
        reason = decide(Facts(
            consultation=c, local=local, sku=sku, manufacturer=m, queue=q,
            working_day=self.is_working_day(local.date()),
            queue_fresh=q is not None and is_fresh(q.reported_at, c.at, self.queue_ttl),
        ))
        return self.answer(c, "platform" if reason != "enrolled" else "manufacturer", reason, sku, m)

    def answer(self, c: Consultation, target: str, reason: str, sku: Sku | None, m: Manufacturer | None) -> dict:
        p = self.platform
        phone = c.channel == "phone"
        to_maker = target == "manufacturer"
        if phone:
            queue_id = None
            hover = None if c.entry_point != "product_page" else (m.scope_text() if to_maker else p.hover_text)
        else:
            queue_id, hover = (m.im_queue_id if to_maker else p.im_queue_id), None
        return {
            "decision_id": decision_id_of(c),
            "target": target,
            "reason": reason,
            "channel": c.channel,
            "queue_id": queue_id,
            "hotline": p.hotline if phone else None,
            "extension": m.phone_extension if phone and to_maker else None,
            "hover_text": hover,
            "manufacturer_id": m.id if m else None,
            "category": sku.category if sku else None,
            "fallback": {"target": "platform", "queue_id": None if phone else p.im_queue_id,
                         "hotline": p.hotline if phone else None},
        }
