from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select

from shared.auth import Policy, Principal
from shared.errors import ApiError
from shared.runtime import Runtime, get_runtime
from sla_timer.api.schemas import OverrideOut, OverridesOut, RulesOut
from sla_timer.domain.rules import RULES, RULES_BY_NAME
from sla_timer.handlers.overrides import rule_out, set_rule_override
from sla_timer.models import RuleOverride

router = APIRouter(prefix="/v1", tags=["rules"])
OPERATOR = Policy("platform_operator")


def _starts(rule) -> list[str]:
    return sorted(rule.starts)


@router.get("/rules", response_model=RulesOut, summary="The deadline rule table (defaults)")
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


@router.put("/rules/{rule}/overrides/{scope}/{scope_id}", response_model=OverrideOut,
            summary="Set a rule's policy for one merchant or category (used for timers started afterwards; "
                    "recorded in the audit log)")
async def set_override(body: OverrideBody, rule: str = Path(min_length=1, max_length=60),
                       scope: Literal["merchant", "category"] = Path(),
                       scope_id: str = Path(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]+$"),
                       rt: Runtime = Depends(get_runtime), p: Principal = Depends(OPERATOR)) -> dict:
    if rule not in RULES_BY_NAME:
        raise ApiError(404, "unknown_rule", f"no rule named {rule!r}")
    return await set_rule_override(rt, p, rule=rule, scope=scope, scope_id=scope_id, enabled=body.enabled,
                                   after_seconds=body.after_seconds, working_days=body.working_days)


@router.get("/rule-overrides", response_model=OverridesOut, summary="Every per-merchant / per-category policy override")
async def list_overrides(rt: Runtime = Depends(get_runtime), p: Principal = Depends(OPERATOR)) -> dict:
    async with rt.sessions() as s:
        rows = (await s.scalars(select(RuleOverride).order_by(RuleOverride.rule, RuleOverride.scope,
                                                              RuleOverride.scope_id))).all()
    return {"items": [rule_out(o) for o in rows]}
