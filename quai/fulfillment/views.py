"""The handheld pick screen: one batch at a time, the next location in big type, a scanner that types and Enter.

Each scan is one call to ``pick_scan`` (the step — location, item, tote — is the server's, kept on the task), so
a refused scan changes nothing but is recorded; htmx swaps the panel, and the page works without it too.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from quai.core.errors import QuaiError, ValidationFailed
from quai.fulfillment import selectors, services
from quai.fulfillment.models import BatchStatus, PickBatch
from quai.tenants.access import staff_role_required

pickers_only = staff_role_required(("admin", "supervisor", "picker"), _lazy("This screen is for pickers."))


@pickers_only
def pick_home(request: HttpRequest) -> HttpResponse:
    """The operator's batch in progress (one at a time), else the batches ready to pick."""
    mine = (
        PickBatch.objects.filter(operator_id=request.user.pk, status__in=[BatchStatus.PICKING, BatchStatus.PAUSED])
        .order_by("pk")
        .first()
    )
    if mine is not None:
        return redirect("fulfillment_ops:pick_batch", batch_id=mine.pk)
    ready = selectors.batch_list(status=BatchStatus.OPEN).select_related("zone")[:30]
    return render(request, "fulfillment/home.html", {"ready": ready})


def _panel(request: HttpRequest, batch: PickBatch, context: dict[str, Any]) -> HttpResponse:
    batch.refresh_from_db()
    task = services.current_task(batch)
    tasks = list(selectors.batch_tasks(batch=batch))
    context.update(
        batch=batch,
        task=task,
        step=services.task_step(task) if task is not None else "",
        remaining=(task.quantity - task.picked_quantity) if task is not None else 0,
        done_count=sum(1 for t in tasks if t.status != "open"),
        total=len(tasks),
    )
    template = "fulfillment/_panel.html" if request.headers.get("HX-Request") else "fulfillment/batch.html"
    return render(request, template, context)


@pickers_only
def pick_batch(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch = selectors.batch_get(batch_id=batch_id)
    return _panel(request, batch, {})


@pickers_only
@require_POST
def pick_action(request: HttpRequest, batch_id: int) -> HttpResponse:
    """Start, pause, resume, a scan or a short pick: one service call each."""
    action = request.POST.get("action", "scan")
    code = request.POST.get("code", "").strip()
    context: dict[str, Any] = {"code": code}
    try:
        if action == "start":
            services.batch_start(batch_id=batch_id, operator=request.user)
            context.update(result="ok", message=_("Batch started: go to the first location."))
        elif action == "pause":
            services.batch_pause(batch_id=batch_id, operator=request.user)
            context.update(result="warn", message=_("Paused. Resume when you are back."))
        elif action == "resume":
            services.batch_resume(batch_id=batch_id, operator=request.user)
            context.update(result="ok", message=_("Resumed."))
        elif action == "short":
            found = int(request.POST.get("found_quantity") or 0)
            services.pick_short(
                batch_id=batch_id,
                operator=request.user,
                found_quantity=found,
                resolution=request.POST.get("resolution", "backorder"),
            )
            context.update(result="warn", message=_("Short pick reported: the supervisor is told."))
        else:
            before = services.current_task(selectors.batch_get(batch_id=batch_id))
            step = services.task_step(before) if before is not None else ""
            quantity_raw = request.POST.get("quantity", "").strip()
            # A quantity typed is the quantity meant: "-3" is refused (the service's range), never read as "all".
            quantity = int(quantity_raw) if quantity_raw else None
            if quantity is not None and quantity < 0:
                raise ValidationFailed(_("Type a quantity above zero."), code="invalid_quantity")
            after = services.pick_scan(batch_id=batch_id, operator=request.user, code=code, quantity=quantity)
            messages = {
                "location": _("Location OK: scan the item."),
                "item": _("Item OK: check the quantity, then scan the tote."),
                "tote": _("In the tote. Next stop."),
            }
            message = messages.get(step, _("OK"))
            if step == "tote" and after is None:
                message = _("In the tote. Batch picked: take the totes to the pack station.")
            elif step == "tote" and before is not None and after is not None and after.pk == before.pk:
                left = after.quantity - after.picked_quantity
                message = _("In the tote: %(left)d more to pick here, then scan the tote again.") % {"left": left}
            context.update(result="ok", message=message)
    except QuaiError as refusal:
        context.update(result="error", message=refusal.message)
    except ValueError:
        context.update(result="error", message=_("Type a whole number."))
    return _panel(request, selectors.batch_get(batch_id=batch_id), context)
