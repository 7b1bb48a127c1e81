"""Answering one consultation from the in-memory state: no database or network
call here. Whatever goes wrong (state too old, a bug, bad data) the answer is
the platform queue with reason ``degraded``, never an error."""
from __future__ import annotations

import logging
import random
import uuid
from dataclasses import replace
from datetime import date, timedelta

from consultation_routing.domain.decision import decide
from consultation_routing.domain.model import Consultation, Facts
from consultation_routing.settings import ConsultationRoutingSettings
from consultation_routing.state import RoutingState
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


class RoutingEngine:
    def __init__(self, state: RoutingState, settings: ConsultationRoutingSettings, calendar: BusinessCalendar) -> None:
        self.state = state
        self.settings = settings
        self.calendar = calendar
        self.queue_ttl = timedelta(seconds=settings.queue_state_ttl_s)
        self._working: dict[date, bool] = {}
        self.degraded_total = 0

    def is_working_day(self, day: date) -> bool:
        cached = self._working.get(day)
        if cached is None:
            if len(self._working) > 1000:
                self._working.clear()
            cached = self._working[day] = self.calendar.is_working_day(day)
        return cached

    def resolve(self, c: Consultation) -> Consultation:
        """The consultation about the SKU its service order (or else its sales order) names,
        when it names no catalogue SKU itself; unchanged otherwise (and on any failure)."""
        try:
            st = self.state
            if c.sku is not None and c.sku in st.skus:
                return c
            if c.service_order_id is None and c.sales_order_id is None:
                return c
            sku = st.order_sku(c.service_order_id, c.sales_order_id)
            # an unknown SKU the caller named stays, unless the order names one routing knows
            if sku is None or sku == c.sku or (c.sku is not None and sku not in st.skus):
                return c
            return replace(c, sku=sku)
        except Exception:  # noqa: BLE001 - route() answers whatever this returns
            log.exception("resolving a consultation's order failed")
            return c

    def route(self, c: Consultation) -> dict:
        try:
            if self.state.age() > self.settings.max_state_age_s:
                return self._platform(c, "degraded", None, None)
            return self._route(c)
        except Exception:  # noqa: BLE001 - the storefront must always get an answer
            self.degraded_total += 1
            log.exception("routing decision failed; answering the platform queue")
            return self._platform(c, "degraded", None, None)

    def _route(self, c: Consultation) -> dict:
        st = self.state
        sku = st.skus.get(c.sku) if c.sku else None
        m = st.manufacturers.get(sku.manufacturer_id) if sku else None
        q = st.queues.get(m.id) if m else None
        facts = Facts(
            consultation=c, sku=sku, manufacturer=m, queue=q,
            working_day=self.is_working_day(c.at.astimezone(BEIJING).date()),
            queue_fresh=q is not None and c.at - q.reported_at <= self.queue_ttl,
        )
        reason = decide(facts)
        if reason != "enrolled":
            return self._platform(c, reason, sku, m)
        phone = c.channel == "phone"
        return self._answer(
            c, "manufacturer", reason, sku, m,
            queue_id=None if phone else m.im_queue_id,
            extension=m.phone_extension if phone else None,
            hover=m.scope_text() if phone and c.entry_point == "product_page" else None,
        )

    def _platform(self, c: Consultation, reason: str, sku, m) -> dict:
        phone = c.channel == "phone"
        s = self.settings
        return self._answer(
            c, "platform", reason, sku, m,
            queue_id=None if phone else s.platform_im_queue_id,
            extension=None,
            hover=s.platform_hover_text if phone and c.entry_point == "product_page" else None,
        )

    def _answer(self, c: Consultation, target: str, reason: str, sku, m, *, queue_id, extension, hover) -> dict:
        s = self.settings
        phone = c.channel == "phone"
        return {
            "decision_id": decision_id_of(c),
            "target": target,
            "reason": reason,
            "channel": c.channel,
            "queue_id": queue_id,
            "hotline": s.platform_hotline if phone else None,
            "extension": extension,
            "hover_text": hover,
            "manufacturer_id": m.id if m else None,
            "category": sku.category if sku else None,
            "fallback": {"target": "platform", "queue_id": None if phone else s.platform_im_queue_id,
                         "hotline": s.platform_hotline if phone else None},
        }
