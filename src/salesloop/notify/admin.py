from __future__ import annotations

from django.contrib import admin

from salesloop.notify.models import Alert, BotDelivery


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: alerts are raised and cleared by their sources (notify.alerts)."""

    list_display = ("id", "kind", "key", "title", "raised_at", "cleared_at")
    list_filter = ("kind",)
    search_fields = ("key", "title")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(BotDelivery)
class BotDeliveryAdmin(admin.ModelAdmin):
    """Read-only: the outbox changes through notify.outbox (retry on /alerts/deliveries/)."""

    list_display = ("id", "alert", "channel", "status", "attempts", "next_attempt_at", "sent_at")
    list_filter = ("status",)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
