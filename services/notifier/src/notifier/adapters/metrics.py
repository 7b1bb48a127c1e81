"""The notifier's domain metrics (names and meanings: docs/operations.md, "Metrics"), per
channel (``sms``, ``inbox``) and template key, counted when the transaction that records the
outcome commits:

- ``notifier_messages_sent_total``: an SMS the gateway accepted, an in-site message delivered
  to the inbox;
- ``notifier_messages_failed_total``: a message that will not be delivered: refused when
  recorded (missing number, unknown template...), an SMS given up after its retries or to a
  number that cannot receive SMS, or one the gateway's receipt reports undelivered (that one
  was counted sent before);
- ``notifier_message_retries_total``: an SMS send that failed and is tried again later.
"""
from __future__ import annotations

from prometheus_client import Counter

from shared.metrics import after_commit


class NotifierMetrics:
    def __init__(self, registry) -> None:
        labels = ["channel", "template"]
        self.sent = Counter("notifier_messages_sent_total", "Messages sent (SMS accepted by the gateway) or "
                            "delivered (in-site)", labels, registry=registry)
        self.failed = Counter("notifier_messages_failed_total", "Messages that will not be delivered", labels,
                              registry=registry)
        self.retries = Counter("notifier_message_retries_total", "SMS sends that failed and will be tried again",
                               labels, registry=registry)

    def at_commit(self, session, outcome: str, channel: str, template: str) -> None:
        """Count ``outcome`` (sent, failed, retried) once ``session`` commits."""
        counter = {"sent": self.sent, "failed": self.failed, "retried": self.retries}[outcome]
        after_commit(session, lambda: counter.labels(channel, template).inc())


def notifier_metrics(rt) -> NotifierMetrics:
    from notifier.parts import notifier_parts  # the parts are built from this module's class

    return notifier_parts(rt).metrics
