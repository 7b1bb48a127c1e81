"""Every metric the console reads from the services' ``/metrics``, in one place.

They are the names the Grafana dashboards and alert rules of ``deploy/`` query (meanings:
docs/operations.md § Metrics), so a figure on a console page and the dashboard panel showing
the same thing read the same series. ``tests/deploy/test_console_metric_names.py`` holds
:data:`READS` against what the services expose and what the dashboards query."""
from __future__ import annotations

EVERY_SERVICE = ("orders", "consultation-routing", "sla-timer", "kpi", "notifier")

# every service (the shared runtime)
SERVICE_READY = "service_ready"  # gauge {check}: 1 passed, 0 failed
CONSUMER_LAG_SECONDS = "consumer_lag_seconds"  # gauge {group}
CONSUMER_LAG_MESSAGES = "consumer_lag_messages"  # gauge {group}
CONSUMER_DEAD_LETTERS = "consumer_dead_letters"  # gauge {group}, sampled: parked messages held
OUTBOX_PENDING = "outbox_pending"  # gauge, sampled
OUTBOX_OLDEST_AGE = "outbox_oldest_pending_age_seconds"  # gauge, sampled

# sla-timer
PENDING_TIMERS = "sla_timer_pending_timers"  # gauge {rule}, sampled
OVERDUE_TIMERS = "sla_timer_overdue_timers"  # gauge, sampled: due more than 5 s ago
FIRING_LATENESS = "sla_timer_firing_lateness_seconds"  # histogram {rule}
FIRING_LATENESS_BUCKET = FIRING_LATENESS + "_bucket"  # {rule, le}: the quantiles and the distribution

# notifier
MESSAGES_SENT = "notifier_messages_sent_total"  # counter {channel, template}
MESSAGES_FAILED = "notifier_messages_failed_total"  # counter {channel, template}
MESSAGE_RETRIES = "notifier_message_retries_total"  # counter {channel, template}

# consultation-routing
ROUTING_DECISIONS = "routing_decisions_total"  # counter {target, reason, channel}

# sample name -> the services whose /metrics the console reads it from
READS: dict[str, tuple[str, ...]] = {
    SERVICE_READY: EVERY_SERVICE,
    CONSUMER_LAG_SECONDS: EVERY_SERVICE,
    CONSUMER_LAG_MESSAGES: EVERY_SERVICE,
    CONSUMER_DEAD_LETTERS: EVERY_SERVICE,
    OUTBOX_PENDING: EVERY_SERVICE,
    OUTBOX_OLDEST_AGE: EVERY_SERVICE,
    PENDING_TIMERS: ("sla-timer",),
    OVERDUE_TIMERS: ("sla-timer",),
    FIRING_LATENESS_BUCKET: ("sla-timer",),
    MESSAGES_SENT: ("notifier",),
    MESSAGES_FAILED: ("notifier",),
    MESSAGE_RETRIES: ("notifier",),
    ROUTING_DECISIONS: ("consultation-routing",),
}
