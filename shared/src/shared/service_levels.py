"""The service levels every service agrees on, in one place.

The SLA timer arms its deadlines with these durations and the KPI service judges the orders
against the same ones, so a breach fired by one is the miss counted by the other
(docs/deadlines.md, docs/kpis.md). The states an order never leaves are in the contracts'
vocabulary (``shared.contracts.vocabulary.TERMINAL_STATES``, generated from the orders
transition table)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

# F2: an order is audited (any ``audit.*`` decision) at most 12 h after its creation;
# exactly 12 h is on time. Later audits are also counted for the late-audit penalty.
AUDIT_WITHIN = timedelta(hours=12)
# F3: a processing decision at most 12 h after the goods were received.
PROCESS_WITHIN = timedelta(hours=12)
# F4: an exchange order ships at most 18 h after the decision that created it.
EXCHANGE_SHIP_WITHIN = timedelta(hours=18)
# Received and not processed within 48 h: a penalty per order, charged to the merchant.
PROCESSING_PENALTY_AFTER = timedelta(hours=48)
PROCESSING_PENALTY_CNY = Decimal("2000.00")
