"""Manufacturer enrollment and disqualification (platform operators)."""
from __future__ import annotations

from sqlalchemy import select

from consultation_routing.models import ManufacturerRow
from consultation_routing.adapters.state import manufacturer_from_row
from shared.errors import ApiError


async def save_enrollment(rt, routing, manufacturer_id: str, fields: dict) -> ManufacturerRow:
    now = rt.clock.now()
    async with rt.uow() as s:
        row = await s.get(ManufacturerRow, manufacturer_id)
        if row is None:
            row = ManufacturerRow(id=manufacturer_id, disqualified=False, disqualified_reason=None,
                                  disqualified_at=None)
            s.add(row)
        for k, v in fields.items():
            setattr(row, k, v)
        row.updated_at = now
    routing.state.put_manufacturer(manufacturer_from_row(row))
    return row


async def set_disqualified(rt, routing, manufacturer_id: str, disqualified: bool, reason: str | None) -> ManufacturerRow:
    now = rt.clock.now()
    async with rt.uow() as s:
        row = await s.get(ManufacturerRow, manufacturer_id)
        if row is None:
            raise ApiError(404, "manufacturer_not_found", f"no enrollment for manufacturer {manufacturer_id}")
        row.disqualified = disqualified
        row.disqualified_reason = reason if disqualified else None
        row.disqualified_at = now if disqualified else None
        row.updated_at = now
    routing.state.put_manufacturer(manufacturer_from_row(row))
    return row


async def get_enrollment(rt, manufacturer_id: str) -> ManufacturerRow:
    async with rt.sessions() as s:
        row = (await s.scalars(select(ManufacturerRow).where(ManufacturerRow.id == manufacturer_id))).first()
    if row is None:
        raise ApiError(404, "manufacturer_not_found", f"no enrollment for manufacturer {manufacturer_id}")
    return row
