from sla_timer.api.audit import router as audit_router
from sla_timer.api.calendar import router as calendar_router
from sla_timer.api.rules import router as rules_router
from sla_timer.api.timers import router as timers_router

ROUTERS = [timers_router, rules_router, calendar_router, audit_router]
