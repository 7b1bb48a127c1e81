from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from shared.errors import ApiError
from shared.auth import Policy, Principal
from shared.runtime import Runtime, get_runtime
from sla_timer.domain.rules import RULES, RULES_BY_NAME
from sla_timer.models import RuleOverride

router = APIRouter(prefix="/v1", tags=["rules"])
OPERATOR = Policy("platform_operator")


def _starts(rule) -> list[str]:
    return sorted(rule.starts)


@router.get("/rules", summary="The deadline rule table (SPEC §3 defaults)")
async def rule_table(_p=Depends(Policy())) -> dict:
    return {"items": [
        {"name": r.name, "starts": _starts(r), "calendar": r.calendar,
         "after_seconds": int(r.after.total_seconds()) if r.after is not None else None,
         "working_days": r.working_days, "action": r.action, "details": r.details,
         "cancelled_by": sorted(r.cancelled_by), "problem_type": r.problem_type, "policy": r.policy,
         "description": r.description}
        for r in RULES
    ]}


class OverrideBody(BaseModel):
    enabled: bool = True
    after_seconds: int | None = Field(default=None, gt=0, le=366 * 86400)
    working_days: int | None = Field(default=None, ge=0, le=366)

    @model_validator(mode="after")
    def _one_duration(self):
        if self.after_seconds is not None and self.working_days is not None:
            raise ValueError("give after_seconds or working_days, not both")
        return self


def _out(o: RuleOverride) -> dict:
    return {"scope": o.scope, "scope_id": o.scope_id, "rule": o.rule, "enabled": o.enabled,
            "after_seconds": o.after_seconds, "working_days": o.working_days, "updated_at": o.updated_at.isoformat()}


@router.put("/rules/{rule}/overrides/{scope}/{scope_id}",
            summary="Set a rule's policy for one merchant or category (used for timers started afterwards)")
async def set_override(rule: str, scope: Literal["merchant", "category"], scope_id: str, body: OverrideBody,
                       rt: Runtime = Depends(get_runtime), p: Principal = Depends(OPERATOR)) -> dict:
    if rule not in RULES_BY_NAME:
        raise ApiError(404, "unknown_rule", f"no rule named {rule!r}")
    if not scope_id or len(scope_id) > 60:
        raise ApiError(422, "bad_scope_id", "scope_id must be 1..60 characters")
    async with rt.uow() as s:
        o = await s.get(RuleOverride, (scope, scope_id, rule))
        if o is None:
            o = RuleOverride(scope=scope, scope_id=scope_id, rule=rule)
            s.add(o)
        o.enabled, o.after_seconds, o.working_days = body.enabled, body.after_seconds, body.working_days
        o.updated_at = rt.clock.now()
        await s.flush()
        out = _out(o)
    rt.sla_policies.invalidate()  # type: ignore[attr-defined]
    return out


@router.get("/rule-overrides", summary="Every per-merchant / per-category policy override")
async def list_overrides(rt: Runtime = Depends(get_runtime), p: Principal = Depends(OPERATOR)) -> dict:
    async with rt.sessions() as s:
        rows = (await s.scalars(select(RuleOverride).order_by(RuleOverride.rule, RuleOverride.scope,
                                                              RuleOverride.scope_id))).all()
    return {"items": [_out(o) for o in rows]}
