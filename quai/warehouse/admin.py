"""Back office for the layout: sites (with their map), zones (open / close), locations (block, move).

Saves and actions go through the services, so the admin obeys the same rules as the API (a zone that still holds
something does not close; a duplicate code is refused).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from quai.core.errors import QuaiError
from quai.warehouse import selectors, services
from quai.warehouse.models import Location, Site, Zone, ZoneKind, ZoneStatus
from quai.warehouse.site_map import KIND_COLOURS, site_map_svg

SITE_FIELDS = [
    "name",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "country",
    "time_zone",
    "opening_days",
    "opens_at",
    "closes_at",
]


class ServiceErrorsAsMessages(admin.ModelAdmin):
    """Saves go through the services; a refusal the form could not foresee (a stale version, a time zone the
    database does not know) is shown as a message instead of a server error, and nothing is written."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except QuaiError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return redirect(request.get_full_path())


@admin.register(Site)
class SiteAdmin(ServiceErrorsAsMessages):
    list_display = ["code", "name", "city", "time_zone", "opens_at", "closes_at", "zone_count", "map_link"]
    search_fields = ["code", "name", "city"]
    readonly_fields = ["map_link"]
    fields = ["code", *SITE_FIELDS, "map_link"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Site]:
        return super().get_queryset(request).annotate(zone_total=Count("zones", distinct=True))

    @admin.display(description=_("zones"), ordering="zone_total")
    def zone_count(self, obj: Site) -> int:
        return getattr(obj, "zone_total", 0)

    @admin.display(description=_("map"))
    def map_link(self, obj: Site) -> str:
        if obj.pk is None:
            return "—"
        url = reverse("admin:warehouse_site_map", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("View the map"))

    def get_readonly_fields(self, request: HttpRequest, obj: Site | None = None) -> list[str]:
        # The code names the site in every document: fixed once created.
        return ["code", "map_link"] if obj is not None else ["map_link"]

    def save_model(self, request: HttpRequest, obj: Site, form: Any, change: bool) -> None:
        values = {name: getattr(obj, name) for name in SITE_FIELDS}
        saved = services.site_update(site=obj, **values) if change else services.site_create(code=obj.code, **values)
        obj.pk = saved.pk
        obj.opening_days = saved.opening_days

    def get_urls(self) -> list[Any]:
        urls = [
            path(
                "<path:object_id>/map/",
                self.admin_site.admin_view(self.map_view),
                name="warehouse_site_map",
            ),
            path(
                "<path:object_id>/map.svg",
                self.admin_site.admin_view(self.map_svg_view),
                name="warehouse_site_map_svg",
            ),
        ]
        return urls + super().get_urls()

    def _site_for_view(self, request: HttpRequest, object_id: str) -> Site:
        site = get_object_or_404(Site, pk=object_id)
        if not self.has_view_permission(request, site):
            raise PermissionDenied
        return site

    def map_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        site = self._site_for_view(request, object_id)
        zones = list(selectors.zone_list(site_id=site.pk))
        legend = [
            {"kind": kind.value, "label": kind.label, "colour": KIND_COLOURS[kind.value]}
            for kind in ZoneKind
            if any(zone.kind == kind.value for zone in zones)
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": site,
            "site": site,
            "title": _("Map of %(site)s") % {"site": site.name},
            # The SVG is built by our own renderer, which escapes every text it writes.
            "svg": mark_safe(site_map_svg(site=site)),
            "zones": zones,
            "legend": legend,
            "svg_url": reverse("admin:warehouse_site_map_svg", args=[site.pk]),
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/warehouse/site/map.html", context)

    def map_svg_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        site = self._site_for_view(request, object_id)
        response = HttpResponse(site_map_svg(site=site), content_type="image/svg+xml; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{site.code}-map.svg"'
        return response


class ZoneForm(forms.ModelForm):
    class Meta:
        model = Zone
        fields = ["site", "code", "name", "kind", "merchant", "valid_from", "valid_until", "version"]
        widgets = {"version": forms.HiddenInput}

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        valid_from, valid_until = cleaned.get("valid_from"), cleaned.get("valid_until")
        if valid_from and valid_until and valid_until <= valid_from:
            self.add_error("valid_until", _("The validity window must end after it starts."))
        return cleaned


@admin.register(Zone)
class ZoneAdmin(ServiceErrorsAsMessages):
    form = ZoneForm
    list_display = [
        "code",
        "name",
        "site",
        "kind",
        "status",
        "merchant",
        "valid_from",
        "valid_until",
        "location_count",
    ]
    list_filter = ["kind", "status", "site", "merchant"]
    search_fields = ["code", "name"]
    list_select_related = ["site", "merchant"]
    readonly_fields = ["status", "closed_at", "closed_by"]
    actions = ["close_selected", "open_selected"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Zone]:
        return super().get_queryset(request).annotate(location_total=Count("locations"))

    @admin.display(description=_("locations"), ordering="location_total")
    def location_count(self, obj: Zone) -> int:
        return getattr(obj, "location_total", 0)

    def get_readonly_fields(self, request: HttpRequest, obj: Zone | None = None) -> list[str]:
        fixed = ["site", "code"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: Zone, form: Any, change: bool) -> None:
        if change:
            saved = services.zone_update(
                zone=obj,
                version=form.cleaned_data["version"],
                name=obj.name,
                kind=obj.kind,
                merchant=obj.merchant,
                valid_from=obj.valid_from,
                valid_until=obj.valid_until,
            )
        else:
            saved = services.zone_create(
                site=obj.site,
                code=obj.code,
                name=obj.name,
                kind=obj.kind,
                merchant=obj.merchant,
                valid_from=obj.valid_from,
                valid_until=obj.valid_until,
            )
        obj.pk, obj.version = saved.pk, saved.version

    @admin.action(description=_("Close selected zones"))
    def close_selected(self, request: HttpRequest, queryset: QuerySet[Zone]) -> None:
        closed = 0
        for zone in queryset.order_by("pk"):
            try:
                services.zone_close(zone=zone, actor=request.user)
            except QuaiError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                closed += 1
        if closed:
            self.message_user(
                request,
                ngettext("%(count)d zone closed.", "%(count)d zones closed.", closed) % {"count": closed},
                messages.SUCCESS,
            )

    @admin.action(description=_("Open selected zones"))
    def open_selected(self, request: HttpRequest, queryset: QuerySet[Zone]) -> None:
        count = 0
        for zone in queryset.filter(status=ZoneStatus.CLOSED).order_by("pk"):
            services.zone_open(zone=zone, actor=request.user)
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d zone opened.", "%(count)d zones opened.", count) % {"count": count},
            messages.SUCCESS,
        )


class MoveToZoneForm(ActionForm):
    zone = forms.ModelChoiceField(
        queryset=Zone.objects.filter(status=ZoneStatus.OPEN).select_related("site"),
        required=False,
        label=_("Target zone"),
    )


class LocationForm(forms.ModelForm):
    class Meta:
        model = Location
        fields = [
            "site",
            "zone",
            "code",
            "aisle",
            "bay",
            "level",
            "position",
            "side",
            "x_m",
            "y_m",
            "max_volume_cm3",
            "max_weight_g",
            "pick_sequence",
            "mixed_sku",
        ]

    def clean_code(self) -> str:
        return str(self.cleaned_data["code"]).strip().upper()

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        site, zone = cleaned.get("site"), cleaned.get("zone")
        if self.instance.pk is None and site and zone and zone.site_id != site.pk:
            self.add_error("zone", _("This zone is not in the chosen site."))
        return cleaned


@admin.register(Location)
class LocationAdmin(ServiceErrorsAsMessages):
    form = LocationForm
    action_form = MoveToZoneForm
    list_display = ["code", "site", "zone", "aisle", "side", "x_m", "y_m", "pick_sequence", "mixed_sku", "status"]
    list_filter = ["status", "zone__kind", "zone", "aisle", "site"]
    search_fields = ["code"]
    list_select_related = ["site", "zone"]
    readonly_fields = ["status", "blocked_reason"]
    actions = ["block_selected", "unblock_selected", "move_selected_to_zone"]
    list_per_page = 100

    def get_readonly_fields(self, request: HttpRequest, obj: Location | None = None) -> list[str]:
        # After creation, the zone changes by the move action and the address never does.
        fixed = ["site", "zone", "code", "aisle", "bay", "level", "position", "side"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: Location, form: Any, change: bool) -> None:
        physical: dict[str, Any] = {
            "x_m": obj.x_m,
            "y_m": obj.y_m,
            "max_volume_cm3": obj.max_volume_cm3,
            "max_weight_g": obj.max_weight_g,
            "pick_sequence": obj.pick_sequence,
            "mixed_sku": obj.mixed_sku,
        }
        if change:
            saved = services.location_update(location=obj, **physical)
        else:
            saved = services.location_create(
                site=obj.site,
                zone=obj.zone,
                code=obj.code,
                aisle=obj.aisle or None,
                bay=obj.bay,
                level=obj.level,
                position=obj.position,
                side=obj.side,
                **physical,
            )
        obj.pk = saved.pk

    @admin.action(description=_("Block selected locations"))
    def block_selected(self, request: HttpRequest, queryset: QuerySet[Location]) -> None:
        count = 0
        for location in queryset.order_by("pk"):
            services.location_block(
                location=location, reason=str(_("Blocked from the back office.")), actor=request.user
            )
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d location blocked.", "%(count)d locations blocked.", count) % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Unblock selected locations"))
    def unblock_selected(self, request: HttpRequest, queryset: QuerySet[Location]) -> None:
        count = 0
        for location in queryset.order_by("pk"):
            services.location_unblock(location=location, actor=request.user)
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d location unblocked.", "%(count)d locations unblocked.", count) % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(description=_("Move selected locations to the zone chosen below"))
    def move_selected_to_zone(self, request: HttpRequest, queryset: QuerySet[Location]) -> None:
        zone_id = request.POST.get("zone")
        if not zone_id:
            self.message_user(request, _("Choose the target zone first."), messages.WARNING)
            return
        zone = get_object_or_404(Zone, pk=zone_id)
        try:
            result = services.locations_move_to_zone(
                zone=zone, location_ids=list(queryset.values_list("pk", flat=True)), actor=request.user
            )
        except QuaiError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request,
            _("%(moved)d location(s) moved to %(zone)s; %(same)d were already there.")
            % {"moved": result.moved, "zone": zone.code, "same": result.already_there},
            messages.SUCCESS,
        )
