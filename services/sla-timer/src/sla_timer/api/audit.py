from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query

from shared.auth import Policy
from shared.runtime import MAX_OFFSET, Runtime, get_runtime
from sla_timer.api.schemas import AuditLogOut
from sla_timer.handlers.overrides import audit_log as read_audit_log

router = APIRouter(prefix="/v1", tags=["audit"])
OPERATOR = Policy("platform_operator")


@router.get("/audit-log", response_model=AuditLogOut,
            summary="Operator changes of rule and calendar overrides (who, when, old → new), newest first")
async def audit_log(kind: Literal["rule_override", "calendar_override"] | None = None,
                    limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=MAX_OFFSET),
                    rt: Runtime = Depends(get_runtime), _p=Depends(OPERATOR)) -> dict:
    return await read_audit_log(rt, kind=kind, limit=limit, offset=offset)
