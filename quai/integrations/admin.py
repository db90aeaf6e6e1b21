"""Back office for outbound webhooks: subscriptions, and deliveries with their attempts and a replay action.

Writes go through the services, as from the API: a subscription is created by ``webhook_subscription_create`` (the
same URL checks and event-type patterns), a replay is a new delivery. A signing secret appears once, in the message
shown after the creation or the rotation that made it, to the staff member who did it; no page shows it afterwards.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from quai.core.crypto import credentials_parse
from quai.core.errors import QuaiError, ValidationFailed
from quai.integrations import services
from quai.integrations.models import (
    Connection,
    ConnectorCall,
    InboundDelivery,
    InboundStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)


class WebhookSubscriptionAddForm(forms.ModelForm):
    """The creation form: the URL and the patterns are checked by the services the API uses, field by field."""

    url = forms.CharField(
        label=_("URL"),
        max_length=2000,
        help_text=_("The merchant's endpoint, https://… (in production its host must resolve to public addresses)."),
        widget=forms.TextInput(attrs={"size": 60}),
    )
    event_types = forms.CharField(
        label=capfirst(_("event types")),
        help_text=_(
            "Event names (order.accepted), prefixes (order.*) or * for every event, separated by commas or spaces."
        ),
        widget=forms.TextInput(attrs={"size": 60}),
    )

    class Meta:
        model = WebhookSubscription
        fields = ["merchant", "url", "event_types", "description", "active"]

    def _checked(self, field: str, check: Any, value: Any) -> Any:
        try:
            return check(value)
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None

    def clean_url(self) -> str:
        return str(self._checked("url", services.webhook_url_check, self.cleaned_data["url"].strip()))

    def clean_event_types(self) -> list[str]:
        patterns = [part for part in re.split(r"[\s,]+", self.cleaned_data["event_types"]) if part]
        return list(self._checked("event_types", services.webhook_event_types_clean, patterns))


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["url", "merchant", "active", "event_types", "description", "previous_secret_expires_at"]
    list_filter = ["active", "merchant"]
    search_fields = ["url", "description", "merchant__code", "merchant__name"]
    list_select_related = ["merchant"]
    readonly_fields = ["merchant", "url", "event_types", "previous_secret_expires_at", "version", "created_at"]
    fields = ["merchant", "url", "event_types", "description", "active", "previous_secret_expires_at", "version"]
    actions = ["ping", "rotate_secret", "rotate_secret_now"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = WebhookSubscriptionAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Adding: what the service takes (no secret field, ever). Changing: the read-only view with two editable fields.
        return WebhookSubscriptionAddForm.Meta.fields if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else list(self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: WebhookSubscription, form: Any, change: bool) -> None:
        if change:
            current = WebhookSubscription.objects.get(pk=obj.pk)
            saved = services.webhook_subscription_update(
                subscription=obj,
                version=current.version,
                description=form.cleaned_data.get("description"),
                active=form.cleaned_data.get("active"),
            )
        else:
            data = form.cleaned_data
            saved = services.webhook_subscription_create(
                merchant=data["merchant"],
                url=data["url"],
                event_types=data["event_types"],
                description=data.get("description") or "",
                active=data.get("active", True),
            )
            self._show_secret_once(request, saved)
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def _show_secret_once(self, request: HttpRequest, subscription: WebhookSubscription) -> None:
        # A one-time message: displayed on the next page, then gone. The secret is in no form, field or list.
        messages.warning(
            request,
            _(
                "Signing secret of %(url)s: %(secret)s. Copy it now and give it to the merchant: it will not be "
                "shown again (rotate it to get a new one)."
            )
            % {"url": subscription.url, "secret": subscription.secret},
        )

    def _rotate(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription], overlap: timedelta) -> None:
        for subscription in queryset.order_by("id"):
            try:
                rotated = services.webhook_subscription_rotate_secret(subscription=subscription, overlap=overlap)
            except QuaiError as exc:
                self.message_user(request, f"{subscription}: {exc.message}", messages.ERROR)
                continue
            self._show_secret_once(request, rotated)

    @admin.action(description=_("Rotate the secret (the old one still signs for 24 hours)"))
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        self._rotate(request, queryset, timedelta(hours=24))

    @admin.action(description=_("Rotate the secret now (leaked: the old one stops at once)"))
    def rotate_secret_now(self, request: HttpRequest, queryset: QuerySet[WebhookSubscription]) -> None:
        self._rotate(request, queryset, timedelta(0))

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


# --- Shop connections --------------------------------------------------------------------------------------------


class ConnectionForm(forms.ModelForm):
    """Credentials are write-only: typed as ``key=value`` lines, merged into the stored ones (an empty value removes
    the key), never shown back."""

    new_credentials = forms.CharField(
        label=_("Credentials to set"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text=_(
            "One key=value per line (consumer_key, consumer_secret, webhook_secret…); stored encrypted, never shown."
        ),
    )

    class Meta:
        model = Connection
        fields = ["merchant", "name", "platform", "base_url", "settings", "safety_buffer", "push_stock", "poll_orders"]

    def clean_new_credentials(self) -> dict[str, str]:
        try:
            return credentials_parse(self.cleaned_data.get("new_credentials") or "")
        except ValueError:
            raise ValidationError(_("Write each credential as key=value.")) from None


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["name", "merchant", "platform", "status", "last_sync_at", "lag_ms", "next_retry_at", "short_error"]
    list_filter = ["platform", "status"]
    search_fields = ["name", "base_url", "merchant__code"]
    readonly_fields = [
        "inbound_url",
        "credential_keys",
        "status",
        "cursor",
        "last_sync_at",
        "last_polled_at",
        "last_stock_push_at",
        "lag_ms",
        "last_error",
        "last_error_at",
        "consecutive_failures",
        "next_retry_at",
        "last_health",
        "last_reconcile",
        "version",
    ]
    actions = ["health_check", "reconcile_stock", "pause", "resume"]

    @admin.display(description=_("Inbound URL"))
    def inbound_url(self, obj: Connection) -> str:
        return services.connection_inbound_url(obj) + "/<topic>" if obj.pk else "—"

    @admin.display(description=_("Credentials set"))
    def credential_keys(self, obj: Connection) -> str:
        return ", ".join(sorted(services.connection_config(obj).credentials)) if obj.pk else "—"

    @admin.display(description=_("Last error"))
    def short_error(self, obj: Connection) -> str:
        return obj.last_error[:80]

    def save_model(self, request: HttpRequest, obj: Connection, form: Any, change: bool) -> None:
        data = form.cleaned_data
        fields = {k: data[k] for k in ("name", "base_url", "settings", "safety_buffer", "push_stock", "poll_orders")}
        try:
            if change:
                saved = services.connection_update(
                    connection=obj,
                    version=Connection.objects.get(pk=obj.pk).version,
                    credentials=data["new_credentials"],
                    **fields,
                )
            else:
                saved = services.connection_create(
                    merchant=data["merchant"], platform=data["platform"], credentials=data["new_credentials"], **fields
                )
        except QuaiError as exc:  # the service's refusal, in the page's language (nothing written)
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = saved.pk

    def _each(self, request: HttpRequest, queryset: QuerySet[Connection], action: str, done: str) -> None:
        for connection in queryset:
            services.connection_task(connection=connection, action=action)
        self.message_user(request, done % {"count": queryset.count()}, messages.SUCCESS)

    @admin.action(description=_("Check the shop's health (credentials, webhooks)"))
    def health_check(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        self._each(
            request, queryset, "health", str(_("Health check asked for %(count)d connection(s); see Last health."))
        )

    @admin.action(description=_("Reconcile the shop's stock with Quai's"))
    def reconcile_stock(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        self._each(
            request,
            queryset,
            "reconcile",
            str(_("Reconcile asked for %(count)d connection(s); see Last stock reconcile.")),
        )

    @admin.action(description=_("Pause (no sync)"))
    def pause(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        for connection in queryset:
            services.connection_update(connection=connection, version=connection.version, status="paused")

    @admin.action(description=_("Resume"))
    def resume(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        for connection in queryset:
            services.connection_update(connection=connection, version=connection.version, status="active")


@admin.register(InboundDelivery)
class InboundDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "connection", "topic", "external_id", "status", "reason", "attempts", "created_at"]
    list_filter = ["status", "topic"]
    search_fields = ["external_id", "delivery_key"]
    exclude = ["body"]
    readonly_fields = [
        "merchant",
        "connection",
        "delivery_key",
        "topic",
        "headers",
        "status",
        "attempts",
        "reason",
        "error_code",
        "missing_skus",
        "external_id",
        "next_attempt_at",
        "processed_at",
        "created_at",
    ]
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description=_("Take again (held or failed)"))
    def retry(self, request: HttpRequest, queryset: QuerySet[InboundDelivery]) -> None:
        for delivery in queryset.exclude(status=InboundStatus.PROCESSED):
            services.inbound_delivery_retry(delivery=delivery)


@admin.register(ConnectorCall)
class ConnectorCallAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "connection",
        "kind",
        "idempotency_key",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["status", "kind"]
    readonly_fields = [
        "merchant",
        "connection",
        "kind",
        "shop_order",
        "idempotency_key",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "locked_until",
        "last_error",
        "result",
        "finished_at",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
