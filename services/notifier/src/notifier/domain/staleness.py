"""When a fired deadline no longer holds (pure).

A ``sla.deadline_fired`` carries the order version its timer was armed for and the facts that
cancel its rule (``cancelled_by``: ``action:<transition action>``, ``state:<to_state>``, the
sla-timer's rule table). The timer service may fire a deadline before it has consumed the
transition that cancels it; the notifier has often seen that transition already. A deadline is
stale when a transition with a version above the armed one produced one of those facts."""
from __future__ import annotations

from collections.abc import Iterable


def transition_facts(action: str, from_state: str, to_state: str) -> set[str]:
    """The facts of one transition, as the sla-timer derives them (an arrival in a state
    only when the state changes)."""
    facts = {f"action:{action}"}
    if to_state != from_state:
        facts.add(f"state:{to_state}")
    return facts


def cancelled_by(transitions: Iterable[tuple[int, str, str, str]], armed_version: int,
                 cancelling: Iterable[str]) -> tuple[int, str] | None:
    """The first later transition (version, fact) that cancels the rule, or None.

    ``transitions``: (version, action, from_state, to_state) the notifier has seen."""
    wanted = set(cancelling)
    if not wanted:
        return None  # an event from before deadlines carried their cancelling facts
    for version, action, from_state, to_state in sorted(transitions):
        if version <= armed_version:
            continue
        hit = transition_facts(action, from_state, to_state) & wanted
        if hit:
            return version, min(hit)
    return None
