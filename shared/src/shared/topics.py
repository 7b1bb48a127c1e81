"""The platform's topics. Order events are keyed by service-order id so one
order's events stay in one partition, in order."""
from shared.clock import CLOCK_TOPIC
from shared.kafka import TopicSpec

ORDER_EVENTS = "orders.events"
SLA_EVENTS = "sla.events"
ROUTING_EVENTS = "routing.events"
KPI_EVENTS = "kpi.events"
NOTIFIER_EVENTS = "notifier.events"
CATALOGUE_EVENTS = "catalogue.events"
ACCOUNT_EVENTS = "accounts.events"

ALL_TOPICS: list[TopicSpec] = [
    TopicSpec(ORDER_EVENTS),
    TopicSpec(SLA_EVENTS),
    TopicSpec(ROUTING_EVENTS),
    TopicSpec(KPI_EVENTS),
    TopicSpec(NOTIFIER_EVENTS),
    TopicSpec(CATALOGUE_EVENTS),
    # One partition: every replica of every service reads all account changes (rare) in order.
    TopicSpec(ACCOUNT_EVENTS, partitions=1),
    # One partition: every service reads all announcements in order.
    TopicSpec(CLOCK_TOPIC, partitions=1),
]
