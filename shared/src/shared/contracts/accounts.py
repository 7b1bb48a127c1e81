"""Account changes published by the orders service on ``accounts.events`` (key: client id).

``account.changed``: an account was deactivated or reactivated, or its permissions or
categories changed. ``version`` is the account's version after the change: a bearer
token carrying an older version (claim ``ver``; no claim counts as 0) is refused by
every service (``shared.accounts.AccountGuard``, docs/security.md)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta, field

from shared.events import Contract, registry
from shared.topics import ACCOUNT_EVENTS


@registry.register("account.changed", topic=ACCOUNT_EVENTS, version=1)
class AccountChanged(Contract, kw_only=True):
    """An account was deactivated or reactivated, or its permissions or categories changed."""

    client_id: Annotated[str, Meta(min_length=1, max_length=64)]
    role: str
    merchant_id: str | None = None
    version: Annotated[int, Meta(ge=1)]
    active: bool
    changes: list[str] = field(default_factory=list)  # active, permissions, categories
    changed_at: Annotated[datetime, Meta(tz=True)]
