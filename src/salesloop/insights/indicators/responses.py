"""What to do when an indicator warns (SPEC C9; the source's own words for the first two)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from salesloop.insights.models.indicators import Indicator

# Codes are stored; labels are translated where shown.
SUGGESTED_RESPONSES = {
    # 线索-商机转化率下滑 → 获客渠道质量复盘会 (the source: 前端获客质量或初筛标准失效)
    Indicator.CONVERSION: "channel_quality_review",
    # 阶段停滞指数升高 → 跨部门诊断工坊, with product and delivery colleagues (the source)
    Indicator.STALL: "cross_team_diagnosis",
    # 响应率下降且报价谈判骤降 → the source reads it as 价格敏感度误判: review the quotes' pricing
    Indicator.RESPONSE: "pricing_review",
}

RESPONSE_LABELS = {
    "channel_quality_review": _("Channel-quality review meeting"),
    "cross_team_diagnosis": _("Cross-team diagnosis workshop"),
    "pricing_review": _("Price-sensitivity review of the open quotes"),
}

FORMULAS = {
    Indicator.CONVERSION: "leads that reached 需求确认 or later ÷ leads that arrived in the window",
    Indicator.STALL: "Σ(stage's mean dwell days × open leads in the stage) ÷ open leads",
    Indicator.RESPONSE: "outbound touches the customer responded to ÷ outbound touches",
}

RULE_LABELS = {
    "no_data": _("Nothing to count in this period."),
    "conversion_healthy": _("Conversion is at or above the healthy line."),
    "conversion_warning": _("Conversion is below the warning line for the second week in a row."),
    "conversion_watch": _("Conversion is below the healthy line."),
    "stall_healthy": _("The stall index is at or below the healthy line."),
    "stall_warning": _("The stall index is above the warning line and 方案演示 holds too many of the leads."),
    "stall_watch": _("The stall index is above the healthy line."),
    "response_healthy": _("The response rate is at or above the healthy line."),
    "response_warning": _("The response rate is below the warning line and dropped sharply at 报价谈判."),
    "response_watch": _("The response rate is below the healthy line."),
}
