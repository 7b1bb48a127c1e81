"""Response models: the OpenAPI document describes every answer (times as ISO 8601 text)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TimerOut(BaseModel):
    id: str
    rule: str
    action: str
    details: dict[str, Any]
    state: str
    due_at: str
    order_version: int
    order_state: str
    created_at: str
    fired_at: str | None
    cancelled_at: str | None
    cancelled_by: str | None


class TimersOut(BaseModel):
    order_id: str
    items: list[TimerOut]


class DueRuleOut(BaseModel):
    rule: str
    action: str
    overdue: int = Field(description="due, not fired yet (the firing loop's backlog)")
    next_hour: int = Field(description="due within the next hour (overdue included)")
    next_day: int = Field(description="due within the next 24 hours (overdue included)")


class DueTimersOut(BaseModel):
    now: str = Field(description="the service clock's time the windows start from")
    items: list[DueRuleOut]


class RuleOut(BaseModel):
    name: str
    starts: list[str]
    calendar: str
    after_seconds: int | None
    working_days: int | None
    action: str
    details: dict[str, Any]
    cancelled_by: list[str]
    problem_type: str | None
    policy: bool
    description: str


class RulesOut(BaseModel):
    items: list[RuleOut]


class OverrideOut(BaseModel):
    scope: str
    scope_id: str
    rule: str
    enabled: bool
    after_seconds: int | None
    working_days: int | None
    updated_at: str


class OverridesOut(BaseModel):
    items: list[OverrideOut]


class DayInfo(BaseModel):
    date: str
    working_day: bool
    holiday: str | None


class WorkingDaysOut(BaseModel):
    start: str
    n: int
    result: str
    result_beijing: str


class BusinessHoursOut(BaseModel):
    start: str
    hours: float
    channel: str
    result: str
    result_beijing: str


class DayOverrideOut(BaseModel):
    date: str
    working: bool
    note: str


class AuditEntryOut(BaseModel):
    id: int
    at: str
    actor: str
    actor_role: str
    kind: str
    rule: str | None
    scope: str | None
    scope_id: str | None
    day: str | None
    old: dict[str, Any] | None
    new: dict[str, Any]


class AuditLogOut(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[AuditEntryOut]
