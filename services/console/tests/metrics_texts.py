"""/metrics pages as the services answer them (Prometheus text format, as prometheus_client
writes it), for the console's tests: the shared runtime's series, and each service's own."""
from __future__ import annotations


def shared(group: str, *, lag: float, lag_messages: int, held: int, outbox: int, oldest: float,
           broker_ok: bool = True) -> str:
    return f"""# HELP service_ready Readiness checks of /ready (1 passed, 0 failed)
# TYPE service_ready gauge
service_ready{{check="database"}} 1.0
service_ready{{check="broker"}} {1.0 if broker_ok else 0.0}
service_ready{{check="schema"}} 1.0
# HELP consumer_lag_seconds Now minus the broker time of the oldest message fetched and not applied
# TYPE consumer_lag_seconds gauge
consumer_lag_seconds{{group="{group}"}} {lag}
# HELP consumer_lag_messages High watermark minus committed offset
# TYPE consumer_lag_messages gauge
consumer_lag_messages{{group="{group}"}} {float(lag_messages)}
# HELP consumer_messages_processed_total Events applied
# TYPE consumer_messages_processed_total counter
consumer_messages_processed_total{{group="{group}"}} 120.0
consumer_messages_processed_created{{group="{group}"}} 1.7966135e+09
# HELP consumer_dead_letters Parked messages held
# TYPE consumer_dead_letters gauge
consumer_dead_letters{{group="{group}"}} {float(held)}
# HELP outbox_pending Outbox rows not yet published
# TYPE outbox_pending gauge
outbox_pending {float(outbox)}
# HELP outbox_oldest_pending_age_seconds Age of the oldest unpublished outbox row
# TYPE outbox_oldest_pending_age_seconds gauge
outbox_oldest_pending_age_seconds {oldest}
"""


# first_response: 0.01 0.02 0.06 0.07 0.2 0.2 0.3 0.4 1000 2000 s late; auto_refund: 4000 5000 s
SLA_TIMER = shared("sla-timer.orders", lag=0.4, lag_messages=2, held=0, outbox=0, oldest=0.0) + """\
# HELP sla_timer_firing_lateness_seconds How late timers fired
# TYPE sla_timer_firing_lateness_seconds histogram
""" + "".join(
    f'sla_timer_firing_lateness_seconds_bucket{{le="{le}",rule="{rule}"}} {n}\n'
    for rule, counts in (("first_response", (2, 4, 6, 8, 8, 8, 8, 8, 8, 8, 8, 10, 10)),
                         ("auto_refund", (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2)))
    for le, n in zip(("0.05", "0.1", "0.25", "0.5", "1.0", "2.0", "5.0", "10.0", "30.0", "60.0", "300.0", "3600.0",
                      "+Inf"), counts)) + """\
sla_timer_firing_lateness_seconds_count{rule="first_response"} 10.0
sla_timer_firing_lateness_seconds_sum{rule="first_response"} 3001.26
sla_timer_firing_lateness_seconds_count{rule="auto_refund"} 2.0
sla_timer_firing_lateness_seconds_sum{rule="auto_refund"} 9000.0
# HELP sla_timer_firing_lateness_seconds_created How late timers fired
# TYPE sla_timer_firing_lateness_seconds_created gauge
sla_timer_firing_lateness_seconds_created{rule="first_response"} 1.796613592592487e+09
# HELP sla_timer_pending_timers Timers armed
# TYPE sla_timer_pending_timers gauge
sla_timer_pending_timers{rule="first_response"} 7.0
sla_timer_pending_timers{rule="auto_refund"} 3.0
sla_timer_pending_timers{rule="repair"} 0.0
# HELP sla_timer_overdue_timers Pending timers due more than 5 s ago
# TYPE sla_timer_overdue_timers gauge
sla_timer_overdue_timers 2.0
"""

NOTIFIER = shared("notifier.orders", lag=1.5, lag_messages=4, held=3, outbox=0, oldest=0.0) + """\
# HELP notifier_messages_sent_total Messages sent
# TYPE notifier_messages_sent_total counter
notifier_messages_sent_total{channel="sms",template="order_rejected"} 5.0
notifier_messages_sent_total{channel="inbox",template="order_rejected"} 4.0
notifier_messages_sent_total{channel="sms",template="ship_back_reminder"} 2.0
notifier_messages_sent_created{channel="sms",template="order_rejected"} 1.7966135e+09
# HELP notifier_messages_failed_total Messages that will not be delivered
# TYPE notifier_messages_failed_total counter
notifier_messages_failed_total{channel="sms",template="order_rejected"} 1.0
# HELP notifier_message_retries_total SMS sends tried again
# TYPE notifier_message_retries_total counter
notifier_message_retries_total{channel="sms",template="ship_back_reminder"} 3.0
"""

ROUTING = shared("consultation-routing.orders", lag=0.0, lag_messages=0, held=0, outbox=12, oldest=42.5) + """\
# HELP routing_decisions_total Consultations routed
# TYPE routing_decisions_total counter
routing_decisions_total{channel="phone",reason="enrolled",target="manufacturer"} 6.0
routing_decisions_total{channel="im",reason="enrolled",target="manufacturer"} 2.0
routing_decisions_total{channel="im",reason="out_of_hours",target="platform"} 3.0
routing_decisions_total{channel="phone",reason="unknown_sku",target="platform"} 1.0
"""

ORDERS = shared("orders.deadlines", lag=12.0, lag_messages=30, held=1, outbox=5, oldest=3.0, broker_ok=False)
# kpi: not answering in the page tests
