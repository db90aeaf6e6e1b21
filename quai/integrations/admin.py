"""Back office for outbound webhooks: subscriptions, and deliveries with their attempts and a replay action.

Writes go through the services, as from the API: a URL is checked the same way, a replay is a new delivery.
The secrets are never shown here (the API shows one once, at creation or rotation).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from quai.core.errors import QuaiError
from quai.integrations import services
from quai.integrations.models import WebhookAttempt, WebhookDelivery, WebhookSubscription


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["url", "merchant", "active", "event_types", "description", "previous_secret_expires_at"]
    list_filter = ["active", "merchant"]
    search_fields = ["url", "description", "merchant__code", "merchant__name"]
    list_select_related = ["merchant"]
    readonly_fields = ["merchant", "url", "event_types", "previous_secret_expires_at", "version", "created_at"]
    fields = ["merchant", "url", "event_types", "description", "active", "previous_secret_expires_at", "version"]
    actions = ["ping"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Created through the API, which checks the URL and shows the new secret once.
        return False

    @admin.action(description=_("Send a test ping"))
    def ping(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        sent = 0
        for subscription in queryset:
            try:
                services.webhook_subscription_ping(subscription=subscription)
                sent += 1
            except QuaiError as exc:
                self.message_user(request, f"{subscription}: {exc.message}", messages.ERROR)
        if sent:
            self.message_user(
                request,
                ngettext("%(count)d ping queued.", "%(count)d pings queued.", sent) % {"count": sent},
                messages.SUCCESS,
            )


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("at", "status_code", "latency_ms", "error", "response_excerpt")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event_name",
        "resource_key",
        "merchant",
        "subscription",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event_name", "merchant"]
    search_fields = ["event_id", "resource_key", "subscription__url"]
    list_select_related = ["merchant", "subscription"]
    readonly_fields = (
        "merchant",
        "subscription",
        "event_id",
        "event_name",
        "resource_key",
        "status",
        "attempts",
        "next_attempt_at",
        "locked_until",
        "finished_at",
        "replay_of",
        "created_at",
        "payload",
    )
    fields = readonly_fields
    inlines = [WebhookAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Replay (send the event again)"))
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        replayed = 0
        for delivery in queryset.order_by("id"):
            try:
                services.webhook_delivery_replay(delivery=delivery)
                replayed += 1
            except QuaiError as exc:
                self.message_user(request, f"{delivery}: {exc.message}", messages.ERROR)
        if replayed:
            self.message_user(
                request,
                ngettext("%(count)d delivery replayed.", "%(count)d deliveries replayed.", replayed)
                % {"count": replayed},
                messages.SUCCESS,
            )
