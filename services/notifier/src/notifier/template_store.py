"""Template versions in the database; defaults seeded at start."""
from __future__ import annotations

from sqlalchemy import func, select

from notifier.models import TemplateVersion
from notifier.templates import DEFAULTS, check


async def latest(session, key: str) -> TemplateVersion | None:
    return (await session.execute(
        select(TemplateVersion).where(TemplateVersion.key == key)
        .order_by(TemplateVersion.version.desc()).limit(1))).scalar_one_or_none()


async def save(session, key: str, title: str, body: str, variables: list[str], now) -> TemplateVersion:
    check(body, variables)
    current = (await session.execute(
        select(func.max(TemplateVersion.version)).where(TemplateVersion.key == key))).scalar()
    row = TemplateVersion(key=key, version=(current or 0) + 1, title=title, body=body,
                          variables=",".join(variables), created_at=now)
    session.add(row)
    await session.flush()
    return row


async def seed_defaults(rt) -> None:
    async with rt.uow() as session:
        for spec in DEFAULTS:
            if await latest(session, spec.key) is None:
                await save(session, spec.key, spec.title, spec.body, list(spec.variables), rt.clock.now())
