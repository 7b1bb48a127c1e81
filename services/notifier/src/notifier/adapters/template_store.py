"""Template versions in the database; defaults seeded at start."""
from __future__ import annotations

from sqlalchemy import func, select

from notifier.models import TemplateVersion
from notifier.domain.templates import DEFAULTS, check
from shared.errors import ApiError


async def latest(session, key: str) -> TemplateVersion | None:
    return (await session.execute(
        select(TemplateVersion).where(TemplateVersion.key == key)
        .order_by(TemplateVersion.version.desc()).limit(1))).scalar_one_or_none()


SUPPLIED = {spec.key: frozenset(spec.variables) for spec in DEFAULTS}


def renders(key: str, variables) -> bool:
    """The notifier supplies every variable the version declares (unknown keys: nothing to check)."""
    return key not in SUPPLIED or set(variables) <= SUPPLIED[key]


async def save(session, key: str, title: str, body: str, variables: list[str], now) -> TemplateVersion:
    check(body, variables)
    if not renders(key, variables):
        extra = sorted(set(variables) - SUPPLIED[key])
        raise ApiError(422, "template_invalid", f"the notifier does not supply {extra} for {key}; "
                       f"it supplies {sorted(SUPPLIED[key])}", {"unsupplied": extra})
    current = (await session.execute(
        select(func.max(TemplateVersion.version)).where(TemplateVersion.key == key))).scalar()
    row = TemplateVersion(key=key, version=(current or 0) + 1, title=title, body=body,
                          variables=",".join(variables), created_at=now)
    session.add(row)
    await session.flush()
    return row


async def seed_defaults(rt) -> None:
    """Seed each default; also add it as a new version when the latest stored one declares a
    variable the notifier no longer supplies (it could only fail: an upgrade renamed it)."""
    async with rt.uow() as session:
        for spec in DEFAULTS:
            current = await latest(session, spec.key)
            if current is None or not renders(spec.key, filter(None, current.variables.split(","))):
                await save(session, spec.key, spec.title, spec.body, list(spec.variables), rt.clock.now())
