"""Identifiers: time-ordered UUIDs (version 7, RFC 9562), by ``uuid-utils``.

Event ids, order ids and timer ids are the keys of the busiest indexes (the inboxes'
``processed_events``, the outboxes' event ids, every per-order table, the timers). Random
(version 4) keys land anywhere in a B-tree: once the indexes outgrow the database's buffer
cache every insert reads and dirties a page of its own. A version 7 UUID starts with its
millisecond timestamp, so new keys go to the right edge of the index, whose pages stay
cached. Still 122 bits of uniqueness: 48 of time, 74 random."""
from __future__ import annotations

import uuid

import uuid_utils
from uuid_utils import compat


def new_uuid() -> uuid.UUID:
    """A time-ordered UUID, as the standard library's type."""
    return compat.uuid7()


def new_id() -> str:
    """A time-ordered UUID as text (``xxxxxxxx-xxxx-7xxx-...``)."""
    return str(uuid_utils.uuid7())


def new_ids(n: int) -> list[str]:
    return [str(uuid_utils.uuid7()) for _ in range(n)]
