"""The console's words in Simplified Chinese (first) and English, and how it writes
numbers (with their unit), money, durations and times (Beijing time, docs/console.md)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from shared.clock import BEIJING

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

# key -> (中文, English)
TEXT: dict[str, tuple[str, str]] = {
    "app.title": ("售后服务平台 · 运营控制台", "After-sales platform · operators' console"),
    "nav.overview": ("总览", "Overview"),
    "nav.deadlines": ("时效", "Deadlines"),
    "nav.arbitration": ("仲裁", "Arbitration"),
    "nav.routing": ("咨询分流", "Routing"),
    "nav.notifications": ("通知", "Notifications"),
    "nav.merchants": ("商家", "Merchants"),
    "nav.platform": ("平台运行", "Platform"),
    "nav.logout": ("退出登录", "Sign out"),
    "nav.lang": ("English", "中文"),
    "role.platform_operator": ("平台运营", "platform operator"),
    "role.arbitrator": ("仲裁员", "arbitrator"),
    "live.updated": ("更新于", "updated"),
    "live.every": ("每 {s} 秒自动刷新", "refreshes every {s} s"),
    "live.stale": ("刷新失败，稍后重试", "refresh failed, retrying"),
    "login.title": ("登录运营控制台", "Sign in to the operators' console"),
    "login.client_id": ("账号 (client id)", "Client id"),
    "login.secret": ("密钥 (client secret)", "Client secret"),
    "login.submit": ("登录", "Sign in"),
    "login.hint": ("仅限平台运营与仲裁人员使用平台账号登录。", "For platform operators and arbitrators, with their platform credentials."),
    "login.invalid": ("账号或密钥不正确，或账号已停用。", "Unknown client, wrong secret or disabled account."),
    "login.not_staff": ("此控制台仅供平台运营与仲裁人员使用，商家与前台账号不能登录。",
                        "This console is for platform operators and arbitrators; merchant and storefront "
                        "credentials cannot sign in."),
    "login.throttled": ("失败次数过多，请 {s} 秒后再试。", "Too many failed attempts; try again in {s} s."),
    "login.unavailable": ("登录服务暂不可用，请稍后再试。", "The sign-in service is unavailable; try again shortly."),
    "login.expired_form": ("登录表单已过期，请重新提交。", "The sign-in form expired; submit it again."),
    "login.signed_out": ("已退出登录。", "Signed out."),
    "login.session_ended": ("会话已结束，请重新登录。", "Your session ended; sign in again."),
    "forbidden.title": ("无权访问", "Not allowed"),
    "forbidden.body": ("你的角色无权查看此页面。", "Your role may not see this page."),
    "error.service": ("{service} 暂不可用：{message}", "{service} unavailable: {message}"),
    "error.refused": ("{service} 未能回答：{message}", "{service} could not answer: {message}"),
    "table.filter": ("筛选…", "Filter…"),
    "table.csv": ("导出 CSV", "Export CSV"),
    "table.empty": ("暂无数据", "Nothing to show"),
    "table.rows": ("{n} 行", "{n} rows"),
    # overview
    "overview.title": ("平台总览", "Platform overview"),
    "overview.open": ("处理中", "Open"),
    "overview.total": ("服务单总数", "Service orders"),
    "overview.opened_24h": ("24 小时新增", "Opened in 24 h"),
    "overview.closed_24h": ("24 小时完结", "Closed in 24 h"),
    "overview.arbitration": ("待仲裁", "In arbitration"),
    "overview.merchants": ("商家", "Merchants"),
    "overview.by_state": ("按状态与履约模式", "By state and fulfilment mode"),
    "overview.per_hour": ("每小时新增与完结（北京时间）", "Opened and closed per hour (Beijing time)"),
    "overview.backlog": ("积压趋势（处理中的服务单）", "Backlog trend (open service orders)"),
    "overview.oldest": ("等待最久的服务单", "Oldest waiting service orders"),
    "overview.top_merchants": ("积压最多的商家", "Merchants with the largest backlog"),
    "col.state": ("状态", "State"),
    "col.mode": ("履约模式", "Mode"),
    "col.count": ("数量", "Count"),
    "col.total": ("合计", "Total"),
    "col.order": ("服务单", "Service order"),
    "col.merchant": ("商家", "Merchant"),
    "col.category": ("类目", "Category"),
    "col.created": ("申请时间", "Applied"),
    "col.age": ("已等待", "Waiting"),
    "col.in_state": ("当前状态停留", "In state for"),
    "col.open": ("处理中", "Open"),
    "col.all": ("全部", "All"),
    "col.hour": ("小时", "Hour"),
    "col.opened": ("新增", "Opened"),
    "col.closed": ("完结", "Closed"),
    "col.backlog": ("积压", "Backlog"),
    "col.rule": ("规则", "Rule"),
    "col.action": ("动作", "Action"),
    "col.overdue": ("已到期未触发", "Due, not yet fired"),
    "col.next_hour": ("未来 1 小时", "Next hour"),
    "col.next_day": ("未来 24 小时", "Next 24 h"),
    "col.fired_at": ("触发时间", "Fired"),
    "col.ended_at": ("触发/取消时间", "Fired / cancelled"),
    "col.due_at": ("到期时间", "Due"),
    "col.lateness": ("触发延迟", "Lateness"),
    "col.level": ("级别", "Level"),
    "col.to": ("通知对象", "To"),
    "col.indicator": ("指标", "Indicator"),
    "col.service_type": ("服务类型", "Service"),
    "col.amount": ("金额", "Amount"),
    "col.customer": ("顾客", "Customer"),
    "col.version": ("版本", "Version"),
    "col.target": ("分流对象", "Target"),
    "col.reason": ("原因", "Reason"),
    "col.channel": ("渠道", "Channel"),
    "col.share": ("占比", "Share"),
    "col.manufacturer": ("厂家", "Manufacturer"),
    "col.to_manufacturer": ("厂家接待", "To manufacturer"),
    "col.to_platform": ("平台接待", "To platform"),
    "col.transfers": ("转接平台", "Transferred"),
    "col.disqualified": ("资格", "Standing"),
    "col.since": ("自", "Since"),
    "col.note": ("备注", "Note"),
    "col.template": ("模板", "Template"),
    "col.status": ("状态", "Status"),
    "col.sent": ("已发送", "Sent"),
    "col.delivered": ("已送达", "Delivered"),
    "col.failed": ("失败", "Failed"),
    "col.retrying": ("重试中", "Retrying"),
    "col.queued": ("排队", "Queued"),
    "col.cancelled": ("已撤回", "Cancelled"),
    "col.attempts": ("尝试次数", "Attempts"),
    "col.error": ("失败原因", "Reason"),
    "col.created_at": ("创建时间", "Created"),
    "col.recipient": ("接收方", "Recipient"),
    "col.rank": ("排名", "Rank"),
    "col.score": ("得分", "Score"),
    "col.week": ("周", "Week"),
    "col.weeks": ("周次", "Weeks"),
    "col.ranks": ("名次", "Ranks"),
    "col.orders": ("服务单", "Orders"),
    "col.lines": ("明细", "Lines"),
    "col.month": ("月份", "Month"),
    "col.kind": ("类别", "Kind"),
    "col.quantity": ("数量", "Quantity"),
    "col.unit_price": ("单价", "Unit price"),
    "col.index_score": ("综合指数", "Index"),
    "col.platinum": ("白金", "Platinum"),
    "col.refund_speed": ("退款时长", "Refund speed"),
    "col.dispute_rate": ("纠纷退款率", "Dispute rate"),
    "col.self_completion": ("自主完结率", "Self-completion"),
    "col.time": ("时间", "Time"),
    "col.actor": ("操作人", "Actor"),
    "col.from_to": ("状态变化", "State change"),
    "col.details": ("详情", "Details"),
    "col.waiting": ("已等待", "Waiting"),
    "col.requested_by": ("发起方", "Requested by"),
    "col.pending": ("待触发", "Pending"),
    "col.retries": ("重试", "Retries"),
    "col.service": ("服务", "Service"),
    "col.group": ("消费组", "Consumer group"),
    "col.lag_s": ("消费延迟", "Lag"),
    "col.lag_messages": ("未消费消息", "Lag (messages)"),
    "col.dead_letters": ("死信", "Parked"),
    "col.ready": ("就绪", "Ready"),
    "col.failing": ("未通过的检查", "Failing checks"),
    "col.outbox_pending": ("待发布事件", "Outbox pending"),
    "col.outbox_oldest": ("最久待发布", "Oldest pending"),
    # deadlines
    "deadlines.title": ("时效监控", "Deadlines"),
    "deadlines.due": ("即将到期的计时器（按规则）", "Timers coming due, by rule"),
    "deadlines.due_next_hour": ("1 小时内到期", "Due within the hour"),
    "deadlines.due_next_day": ("24 小时内到期", "Due within 24 h"),
    "deadlines.overdue": ("已到期待触发", "Due, waiting to fire"),
    "deadlines.open_breaches": ("未解除的超时", "Open breaches"),
    "deadlines.open_escalations": ("未解除的升级", "Open escalations"),
    "deadlines.breaches": ("超时（服务单仍停留在超时状态）", "Breaches (the order is still where it breached)"),
    "deadlines.escalations": ("升级（服务单仍停留在升级状态）", "Escalations (the order is still where it escalated)"),
    "deadlines.lateness": ("触发延迟分布（自 sla-timer 启动）", "Firing lateness (since sla-timer started)"),
    "deadlines.fired_24h": ("近 24 小时触发", "Fired in 24 h"),
    "deadlines.lateness_p50": ("触发延迟 P50", "Lateness p50"),
    "deadlines.lateness_p99": ("触发延迟 P99", "Lateness p99"),
    "deadlines.pending": ("待触发计时器", "Pending timers"),
    "deadlines.pending_by_rule": ("待触发计时器（按规则）", "Pending timers by rule"),
    "deadlines.recent": ("最近触发", "Recently fired"),
    # arbitration
    "arbitration.title": ("仲裁队列", "Arbitration queue"),
    "arbitration.queue": ("等待裁决的服务单", "Orders waiting for a decision"),
    "arbitration.waiting": ("等待裁决", "Waiting"),
    "arbitration.oldest": ("最久等待", "Longest wait"),
    "arbitration.open": ("查看", "Open"),
    "order.title": ("服务单 {number}", "Service order {number}"),
    "order.timeline": ("完整时间线", "Full timeline"),
    "order.timers": ("计时器", "Timers"),
    "order.messages": ("通知", "Messages"),
    "order.summary": ("概况", "Summary"),
    "order.locked_from": ("仲裁前状态", "Locked from"),
    "order.refunded": ("已退款", "Refunded"),
    "order.amount_paid": ("实付金额", "Amount paid"),
    "order.decide": ("仲裁裁决（具有约束力）", "Binding arbitration decision"),
    "order.outcome": ("裁决结果", "Outcome"),
    "order.amount": ("退款金额（元）", "Refund amount (CNY)"),
    "order.sku": ("换货 SKU", "Exchange SKU"),
    "order.note": ("裁决说明", "Reasons"),
    "order.submit": ("提交裁决", "Record the decision"),
    "order.decided": ("裁决已记录，服务单状态：{state}", "Decision recorded; the order is now: {state}"),
    "order.refused": ("裁决未被接受：{message}", "The decision was refused: {message}"),
    "order.reauth": ("你的登录凭证已过期，需重新登录后才能裁决。", "Your sign-in token expired: sign in again to decide."),
    "order.reauth_link": ("重新登录", "Sign in again"),
    "order.only_arbitrators": ("只有仲裁员可以裁决。", "Only arbitrators decide."),
    "order.not_locked": ("该服务单不在仲裁中。", "This order is not in arbitration."),
    "outcome.refund": ("退款", "Refund"),
    "outcome.exchange": ("换货", "Exchange"),
    "outcome.return_original": ("退回原件", "Return the original"),
    "outcome.reject": ("驳回", "Reject"),
    # routing
    "routing.title": ("咨询分流", "Consultation routing"),
    "routing.window": ("近 24 小时", "Last 24 h"),
    "routing.decisions": ("分流决定", "Decisions"),
    "routing.manufacturer_share": ("厂家接待占比", "Manufacturer share"),
    "routing.platform_share": ("平台接待占比", "Platform share"),
    "routing.share": ("厂家 vs 平台（自分流服务启动）", "Manufacturer vs platform (since routing started)"),
    "routing.reasons_since": ("分流原因（自分流服务启动）", "Reasons (since routing started)"),
    "routing.reasons": ("分流原因", "Reasons"),
    "routing.per_manufacturer": ("按厂家与渠道", "Per manufacturer and channel"),
    "routing.per_hour": ("每小时分流（北京时间）", "Decisions per hour (Beijing time)"),
    "routing.disqualified": ("被取消资格的厂家", "Disqualified manufacturers"),
    "routing.transfers": ("转接到平台", "Transferred to the platform"),
    # notifications
    "notifications.title": ("通知投递", "Notification delivery"),
    "notifications.by_channel": ("按渠道与模板", "By channel and template"),
    "notifications.failures": ("失败的通知及原因", "Failed messages and why"),
    "notifications.sent": ("已发送", "Sent"),
    "notifications.failed": ("失败", "Failed"),
    "notifications.retrying": ("重试中", "Retrying"),
    "notifications.queued": ("排队中", "Queued"),
    "notifications.status_chart": ("投递状态", "Delivery status"),
    "notifications.counted": ("发送与失败（按渠道，自通知服务启动）", "Sent and failed by channel (since the notifier started)"),
    "notifications.counted_table": ("发送、失败与重试（按渠道与模板，自通知服务启动）",
                                    "Sent, failed and retried by channel and template (since the notifier started)"),
    # platform
    "platform.title": ("平台运行状态", "Platform health"),
    "platform.ready": ("就绪的服务", "Services ready"),
    "platform.max_lag": ("最大消费延迟", "Largest consumer lag"),
    "platform.dead_letters": ("死信（待处理）", "Parked messages held"),
    "platform.outbox_pending": ("待发布事件", "Outbox: pending events"),
    "platform.outbox_oldest": ("最久待发布事件", "Outbox: oldest pending"),
    "platform.lag_chart": ("消费延迟（按消费组，秒）", "Consumer lag by group (seconds)"),
    "platform.dead_letters_chart": ("死信（按服务）", "Parked messages held, by service"),
    "platform.outbox_chart": ("Outbox 待发布事件（按服务）", "Outbox: pending events by service"),
    "platform.services": ("各服务", "Services"),
    "platform.consumers": ("消费组", "Consumer groups"),
    "platform.unreachable": ("无法读取", "unreachable"),
    # merchants
    "merchants.title": ("商家考核", "Merchants"),
    "merchants.week": ("考核周（周一）", "Week (Monday)"),
    "merchants.scorecards": ("周度考核与排名", "Weekly scorecards and ranking"),
    "merchants.flags": ("连续 3 周后 10 名", "Bottom 10 for 3 consecutive weeks"),
    "merchants.penalties": ("罚款", "Penalties"),
    "merchants.billing": ("计费", "Billing"),
    "merchants.index": ("综合售后指数（近 28 天）", "Composite after-sales index (28 days)"),
    "merchants.ranked": ("参与排名", "Ranked"),
    "merchants.penalty_total": ("本周罚款合计", "Penalties this week"),
    "merchants.billing_total": ("本月计费合计", "Billed this month"),
    "merchants.flagged": ("被标记商家", "Flagged merchants"),
    "merchants.drill": ("明细", "Details"),
    "merchants.score_dist": ("得分分布", "Score distribution"),
    "merchant.title": ("商家 {id}", "Merchant {id}"),
    "merchant.history": ("近几周考核", "Recent weeks"),
    "merchant.open_orders": ("处理中的服务单", "Open service orders"),
    "merchant.backlog": ("积压", "Backlog"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "none": ("—", "—"),
    "disqualified": ("已取消资格", "disqualified"),
    "qualified": ("已恢复", "requalified"),
}

STATES = {
    "pending_claim": ("待领取", "pending claim"), "pending_audit": ("待审核", "pending audit"),
    "awaiting_customer_feedback": ("待顾客补充", "awaiting customer feedback"),
    "awaiting_return_shipment": ("待顾客寄回", "awaiting return shipment"),
    "awaiting_receipt": ("待收货", "awaiting receipt"), "pending_process": ("待处理", "pending process"),
    "provisionally_completed": ("待确认完成", "provisionally completed"), "unresolved": ("未解决", "unresolved"),
    "arbitration": ("仲裁中", "in arbitration"), "completed": ("已完成", "completed"),
    "rejected": ("已驳回", "rejected"), "abandoned": ("已放弃", "abandoned"), "closed": ("已关闭", "closed"),
    "refunded_by_system": ("系统已退款", "refunded by the system"),
}
MODES = {
    "platform": ("平台服务", "platform"), "customer_contact": ("厂家联系顾客", "customer contact"),
    "full_manufacturer": ("厂家全流程", "full manufacturer"), "pop_self_service": ("POP 自主售后", "POP self-service"),
}
REASONS = {
    "enrolled": ("厂家已入驻", "enrolled"), "not_enrolled": ("厂家未入驻", "not enrolled"),
    "out_of_hours": ("非服务时间", "out of hours"), "disqualified": ("厂家被取消资格", "disqualified"),
    "no_agents": ("厂家无客服在线", "no agents online"), "overflow": ("厂家排队过长", "overflow"),
    "unknown_sku": ("未知 SKU", "unknown SKU"), "degraded": ("降级分流", "degraded"),
}
TARGETS = {"manufacturer": ("厂家", "manufacturer"), "platform": ("平台", "platform")}
CHANNELS = {"phone": ("电话", "phone"), "im": ("在线咨询", "IM"), "sms": ("短信", "SMS"),
            "inbox": ("站内信", "in-site")}
MESSAGE_STATUS = {"queued": ("排队", "queued"), "sent": ("已发送", "sent"), "delivered": ("已送达", "delivered"),
                  "failed": ("失败", "failed"), "cancelled": ("已撤回", "cancelled"), "retrying": ("重试中", "retrying")}
ACTIONS_FIRED = {"escalate": ("升级", "escalate"), "breach": ("超时", "breach"), "penalty": ("罚款", "penalty"),
                 "remind_customer": ("提醒顾客", "remind customer"), "remind_merchant": ("提醒商家", "remind merchant"),
                 "auto_refund": ("自动退款", "auto refund"), "auto_close": ("自动关闭", "auto close"),
                 "auto_confirm": ("自动确认", "auto confirm"),
                 "advance_compensation": ("先行赔付", "advance compensation")}
ROLES_ACTING = {"storefront": ("顾客", "customer"), "merchant_main": ("商家主账号", "merchant"),
                "merchant_staff": ("商家员工", "merchant staff"), "platform_operator": ("平台运营", "operator"),
                "arbitrator": ("仲裁员", "arbitrator"), "system": ("系统", "system"), "customer": ("顾客", "customer")}

RULES = {
    "first_response": ("首次响应", "first response"), "first_response_manager": ("首次响应（经理）", "first response (manager)"),
    "audit_deadline": ("审核时效", "audit deadline"), "audit_escalation": ("审核超时升级", "audit escalation"),
    "advance_compensation": ("先行赔付", "advance compensation"), "feedback_timeout": ("补充资料超时", "feedback timeout"),
    "ship_back_reminder_1": ("寄回提醒 1", "ship-back reminder 1"), "ship_back_reminder_2": ("寄回提醒 2", "ship-back reminder 2"),
    "ship_back_reminder_3": ("寄回提醒 3", "ship-back reminder 3"), "ship_back_timeout": ("寄回超时", "ship-back timeout"),
    "merchant_reminder": ("商家提醒", "merchant reminder"), "auto_refund": ("自动退款", "auto refund"),
    "processing_kpi": ("处理时效", "processing deadline"), "processing_penalty": ("处理超时罚款", "processing penalty"),
    "quality_plan": ("质量问题方案", "quality plan"), "logistics_resolution": ("物流问题处理", "logistics resolution"),
    "exchange_shipping": ("换货发货", "exchange shipping"), "repair": ("维修", "repair"),
    "refund_payout": ("退款到账", "refund payout"), "customer_confirmation": ("顾客确认", "customer confirmation"),
}
READY_CHECKS = {"database": ("数据库", "database"), "broker": ("消息队列", "broker"),
                "schema": ("数据库结构", "schema")}
TIMER_STATES = {"pending": ("待触发", "pending"), "fired": ("已触发", "fired"), "cancelled": ("已取消", "cancelled")}
ORDER_ACTIONS = {
    "apply": ("申请", "application"), "claim": ("领取", "claim"), "assign": ("分配", "assign"),
    "audit.resend_without_return": ("审核：免退补发", "audit: resend without return"),
    "audit.approve_return": ("审核：同意退回", "audit: approve return"),
    "audit.request_feedback": ("审核：请顾客补充", "audit: request feedback"), "audit.reject": ("审核：驳回", "audit: reject"),
    "audit.abandon": ("审核：放弃", "audit: abandon"), "customer_feedback": ("顾客补充", "customer feedback"),
    "abandon": ("放弃", "abandon"), "fill_shipment": ("填写寄回物流", "return shipment"),
    "remind_to_ship": ("提醒寄回", "remind to ship"), "register_receipt": ("登记收货", "receipt"),
    "freight.edit": ("修改运费", "freight edit"), "process.refund": ("处理：退款", "process: refund"),
    "process.exchange": ("处理：换货", "process: exchange"), "process.return_original": ("处理：原件返还", "process: return original"),
    "process.offline_exchange": ("处理：线下换货", "process: offline exchange"), "process.repair": ("处理：维修", "process: repair"),
    "exchange.shipped": ("换货已发出", "exchange shipped"), "repair.shipped_back": ("维修件已寄回", "repair shipped back"),
    "refund.paid": ("退款已到账", "refund paid"), "cancel_outcome": ("撤销处理结果", "cancel outcome"),
    "confirm": ("顾客确认", "confirm"), "message": ("顾客留言", "message"), "reply": ("回复", "reply"),
    "mark_resolved": ("标记已解决", "mark resolved"), "rate": ("评价", "rating"),
    "arbitration.request": ("申请仲裁", "arbitration request"), "arbitration.decide": ("仲裁裁决", "arbitration decision"),
    "system.auto_close": ("系统自动关闭", "auto close"), "system.auto_refund": ("系统自动退款", "auto refund"),
    "system.advance_compensation": ("系统先行赔付", "advance compensation"), "system.auto_confirm": ("系统自动确认", "auto confirm"),
}

# unit -> (中文 suffix, English singular, English plural)
UNITS = {
    "orders": ("单", "order", "orders"), "timers": ("个", "timer", "timers"),
    "messages": ("条", "message", "messages"), "consultations": ("次", "consultation", "consultations"),
    "merchants": ("家", "merchant", "merchants"), "manufacturers": ("家", "manufacturer", "manufacturers"),
    "lines": ("条", "line", "lines"), "events": ("个", "event", "events"),
}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[0] if lang == "zh" else pair[1]


class Words:
    """Everything a page writes, in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT_LANG

    def __call__(self, key: str, **values) -> str:
        pair = TEXT.get(key)
        text = key if pair is None else _pick(pair, self.lang)
        return text.format(**values) if values else text

    def _named(self, table: dict, value) -> str:
        if value is None or value == "":
            return self("none")
        pair = table.get(str(value))
        return str(value) if pair is None else _pick(pair, self.lang)

    def state(self, v) -> str:
        return self._named(STATES, v)

    def mode(self, v) -> str:
        return self._named(MODES, v)

    def reason(self, v) -> str:
        return self._named(REASONS, v)

    def target(self, v) -> str:
        return self._named(TARGETS, v)

    def channel(self, v) -> str:
        return self._named(CHANNELS, v)

    def status(self, v) -> str:
        return self._named(MESSAGE_STATUS, v)

    def fired_action(self, v) -> str:
        return self._named(ACTIONS_FIRED, v)

    def rule(self, v) -> str:
        return self._named(RULES, v)

    def check(self, v) -> str:
        return self._named(READY_CHECKS, v)

    def timer_state(self, v) -> str:
        return self._named(TIMER_STATES, v)

    def action(self, v) -> str:
        return self._named(ORDER_ACTIONS, v)

    def actor(self, v) -> str:
        return self._named(ROLES_ACTING, v)

    def count(self, n, unit: str | None = None) -> str:
        """``1,234 单`` / ``1,234 orders``."""
        if n is None:
            return self("none")
        text = f"{n:,}" if isinstance(n, int) else str(n)
        if unit is None:
            return text
        zh, one, many = UNITS[unit]
        if self.lang == "zh":
            return f"{text} {zh}"
        return f"{text} {one if n == 1 else many}"

    def pct(self, part: float, whole: float) -> str:
        if not whole:
            return self("none")
        return f"{100.0 * part / whole:.1f}%"

    def money(self, v) -> str:
        """``¥1,999.00`` (元) / ``CNY 1,999.00``."""
        if v is None or v == "":
            return self("none")
        try:
            d = Decimal(str(v))
        except InvalidOperation:
            return str(v)
        return f"¥{d:,.2f}" if self.lang == "zh" else f"CNY {d:,.2f}"

    def score(self, v) -> str:
        if v is None or v == "":
            return self("none")
        try:
            return f"{Decimal(str(v)):.2f}"
        except InvalidOperation:
            return str(v)

    def duration(self, seconds) -> str:
        """``2 天 3 小时`` / ``2 d 3 h``: the two largest units."""
        if seconds is None:
            return self("none")
        s = int(round(float(seconds)))
        sign = "-" if s < 0 else ""
        s = abs(s)
        parts = [(s // 86400, "天", "d"), (s % 86400 // 3600, "小时", "h"), (s % 3600 // 60, "分钟", "min"),
                 (s % 60, "秒", "s")]
        shown = [(n, zh, en) for n, zh, en in parts if n][:2] or [(0, "秒", "s")]
        return sign + " ".join(f"{n} {zh if self.lang == 'zh' else en}" for n, zh, en in shown)

    def seconds(self, v) -> str:
        """A short duration with decimals (firing lateness): ``0.35 秒`` / ``0.35 s``."""
        if v is None:
            return self("none")
        return f"{float(v):,.2f} {'秒' if self.lang == 'zh' else 's'}"

    def time(self, t) -> str:
        """Beijing time, ``2026-11-11 09:05`` (the pages say once that times are Beijing's)."""
        if t is None or t == "":
            return self("none")
        if isinstance(t, str):
            try:
                t = datetime.fromisoformat(t)
            except ValueError:
                return t
        return t.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")

    def clock(self, t: datetime) -> str:
        """Beijing time to the second (when the figures were read)."""
        return t.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")

    def hour(self, t: datetime) -> str:
        return t.astimezone(BEIJING).strftime("%m-%d %H:00")


def beijing_label(t: datetime) -> str:
    """An hour as Beijing wall-clock text for chart axes (category labels: the axis title says
    Beijing; plotly's own date ticks would be English)."""
    return t.astimezone(BEIJING).strftime("%m-%d %H:00")
