"""Customer service: shoppers, tickets and their messages, macros, agent actions, returns (RMA) and refunds.

Invariants, and where each is kept:

- One customer per merchant and normalised email, and per merchant and E.164 phone: partial unique constraints
  below (an empty value is no identity); ``customer_match`` merges an order's shopper into the customer found.
- A ticket's and a return's ``status`` move only along ``quai.service.domain`` tables through
  ``quai.core.states.transition`` (audit row + event in one transaction), never by a plain save.
- One stored mail per (merchant, Message-ID): the unique constraint makes polling the same mailbox twice harmless.
- Orders are linked, never copied: the order-360 panel reads them through orders' selectors.
- Erasing a shopper (GDPR) blanks personal fields and keeps every logistics row; ``erased_at`` says when.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from quai.core.models import TimeStampedModel, VersionedModel
from quai.service import domain
from quai.tenants.models import MerchantOwned


class ServiceSettings(MerchantOwned, TimeStampedModel):
    """One merchant's customer service: brand on the tracking page, business hours, SLA targets, mailbox."""

    brand_name = models.CharField(_("brand name"), max_length=100, blank=True)
    brand_colour = models.CharField(_("brand colour"), max_length=7, default="#1f4e79")
    timezone = models.CharField(_("time zone"), max_length=64, default="Europe/Paris")
    weekdays = models.CharField(_("open weekdays (0 = Monday)"), max_length=7, default="01234")
    opens = models.TimeField(_("opens at"), default="09:00")
    closes = models.TimeField(_("closes at"), default="18:00")
    first_response_minutes = models.PositiveIntegerField(_("first response within (business minutes)"), default=240)
    resolution_minutes = models.PositiveIntegerField(_("resolution within (business minutes)"), default=1620)
    warn_before_minutes = models.PositiveIntegerField(_("warn before a breach (minutes)"), default=60)
    # The support mailbox: mail in over POP3, out over SMTP. The passwords are secrets like an API key's.
    support_email = models.EmailField(_("support address"), blank=True)
    mail_host = models.CharField(_("POP3 host"), max_length=200, blank=True)
    mail_port = models.PositiveIntegerField(_("POP3 port"), default=995)
    mail_ssl = models.BooleanField(_("POP3 over TLS"), default=True)
    mail_username = models.CharField(_("mail user"), max_length=200, blank=True)
    mail_password = models.CharField(_("mail password"), max_length=200, blank=True)
    smtp_host = models.CharField(_("SMTP host"), max_length=200, blank=True)
    smtp_port = models.PositiveIntegerField(_("SMTP port"), default=587)
    smtp_starttls = models.BooleanField(_("SMTP STARTTLS"), default=True)
    smtp_username = models.CharField(_("SMTP user"), max_length=200, blank=True)
    smtp_password = models.CharField(_("SMTP password"), max_length=200, blank=True)
    # The returns portal: how long after delivery (else shipping) a shopper may open a return on their own.
    return_window_days = models.PositiveIntegerField(_("return window (days)"), default=30)

    class Meta:
        verbose_name = _("service settings")
        verbose_name_plural = _("service settings")
        constraints = [models.UniqueConstraint(fields=["merchant"], name="service_settings_one_per_merchant")]

    def __str__(self) -> str:
        return str(_("Customer service settings"))

    @property
    def business_hours(self) -> domain.BusinessHours:
        from datetime import time

        def as_time(value: object) -> time:
            return value if isinstance(value, time) else time.fromisoformat(str(value))

        return domain.BusinessHours(
            timezone=self.timezone,
            weekdays=frozenset(int(day) for day in self.weekdays if day.isdecimal()),
            opens=as_time(self.opens),
            closes=as_time(self.closes),
        )

    @property
    def sla_targets(self) -> domain.SlaTargets:
        return domain.SlaTargets(self.first_response_minutes, self.resolution_minutes, self.warn_before_minutes)


class Customer(MerchantOwned, TimeStampedModel):
    """A shopper of one merchant, known by a normalised email and/or an E.164 phone."""

    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    phone = models.CharField(_("phone (E.164)"), max_length=20, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    trusted = models.BooleanField(_("trusted shopper"), default=False)
    erased_at = models.DateTimeField(_("personal data erased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "email"], condition=~Q(email=""), name="customer_unique_email_per_merchant"
            ),
            models.UniqueConstraint(
                fields=["merchant", "phone"], condition=~Q(phone=""), name="customer_unique_phone_per_merchant"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"#{self.pk}"


class CustomerOrder(models.Model):
    """An order placed by a customer (an order belongs to one customer at most)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="order_links")
    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="+")
    linked_at = models.DateTimeField(_("linked at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer order")
        verbose_name_plural = _("customer orders")

    def __str__(self) -> str:
        return f"{self.customer_id} → {self.order_id}"


class TicketStatus(models.TextChoices):
    NEW = domain.NEW, _("New")
    OPEN = domain.OPEN, _("Open")
    PENDING = domain.PENDING, _("Waiting for the shopper")
    RESOLVED = domain.RESOLVED, _("Resolved")
    CLOSED = domain.CLOSED, _("Closed")


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    FORM = "form", _("Contact form")
    API = "api", _("API")
    SHOP = "shop", _("Shop event")


class Category(models.TextChoices):
    WHERE_IS_MY_ORDER = domain.WHERE_IS_MY_ORDER, _("Where is my order")
    LATE = domain.LATE, _("Late")
    DAMAGED = domain.DAMAGED, _("Damaged")
    MISSING_ITEM = domain.MISSING_ITEM, _("Missing item")
    WRONG_ITEM = domain.WRONG_ITEM, _("Wrong item")
    RETURN = domain.RETURN, _("Return")
    EXCHANGE = domain.EXCHANGE, _("Exchange")
    ADDRESS_CHANGE = domain.ADDRESS_CHANGE, _("Address change")
    CANCEL = domain.CANCEL, _("Cancel")
    OTHER = domain.OTHER, _("Other")


class Ticket(MerchantOwned, TimeStampedModel, VersionedModel):
    """A shopper's question or problem, from any channel, with its SLA clocks."""

    subject = models.CharField(_("subject"), max_length=250)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    status = models.CharField(
        _("status"), max_length=10, choices=TicketStatus.choices, default=TicketStatus.NEW, db_index=True
    )
    category = models.CharField(_("category"), max_length=20, choices=Category.choices, default=Category.OTHER)
    suggested_category = models.CharField(
        _("suggested category"), max_length=20, choices=Category.choices, default=Category.OTHER
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets", verbose_name=_("customer")
    )
    requester_email = models.EmailField(_("requester email"), max_length=254, blank=True)
    requester_name = models.CharField(_("requester name"), max_length=200, blank=True)
    language = models.CharField(_("language"), max_length=8, default="fr")
    orders = models.ManyToManyField("orders.Order", related_name="+", blank=True, verbose_name=_("orders"))
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assignee"),
    )
    first_response_due = models.DateTimeField(_("first response due"), null=True, blank=True)
    resolution_due = models.DateTimeField(_("resolution due"), null=True, blank=True)
    first_responded_at = models.DateTimeField(_("first answered at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    # Set once the sweep warned about a coming breach, so each clock warns once.
    first_response_warned = models.BooleanField(default=False)
    resolution_warned = models.BooleanField(default=False)
    auto_answered = models.BooleanField(_("answered automatically"), default=False)
    escalation = models.CharField(_("why an agent must look"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-id"]
        indexes = [models.Index(fields=["merchant", "status", "resolution_due"], name="ticket_queue_idx")]

    def __str__(self) -> str:
        return f"T{self.pk} {self.subject}"

    @property
    def reference(self) -> str:
        return f"T{self.pk}"


class MessageKind(models.TextChoices):
    INBOUND = "inbound", _("From the shopper")
    OUTBOUND = "outbound", _("To the shopper")
    NOTE = "note", _("Internal note")


class SendState(models.TextChoices):
    NOT_APPLICABLE = "", _("—")
    PENDING = "pending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Not sent")


class TicketMessage(MerchantOwned):
    """One message of a ticket's thread: the shopper's, an agent's answer, or an internal note."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(_("kind"), max_length=10, choices=MessageKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author_label = models.CharField(_("from"), max_length=254, blank=True)
    body = models.TextField(_("text"))
    # RFC 5322 Message-ID (angle brackets included) for mail in or out; what replies thread on.
    message_id = models.CharField(_("Message-ID"), max_length=250, blank=True)
    in_reply_to = models.CharField(_("In-Reply-To"), max_length=250, blank=True)
    references = models.TextField(_("References"), blank=True)
    attachments = models.JSONField(_("attachments (names and sizes)"), default=list, blank=True)
    problems = models.JSONField(_("problems found reading it"), default=list, blank=True)
    send_state = models.CharField(
        _("sending"), max_length=10, choices=SendState.choices, default=SendState.NOT_APPLICABLE, blank=True
    )
    send_error = models.CharField(_("sending error"), max_length=500, blank=True)
    # A failed mail is tried again by the beat sweep (``mails_retry_due``) with a growing wait, up to a limit;
    # ``next_send_at`` empty on a failed mail means it was given up (an agent sends it again by hand).
    send_attempts = models.PositiveIntegerField(_("sending attempts"), default=0)
    next_send_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    automatic = models.BooleanField(_("automatic answer"), default=False)
    created_at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("ticket message")
        verbose_name_plural = _("ticket messages")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "message_id"], condition=~Q(message_id=""), name="ticket_message_unique_mail"
            )
        ]


class Macro(MerchantOwned, TimeStampedModel):
    """A saved answer with placeholders ({{ order_number }}, {{ tracking_link }}, {{ promised_date }}…)."""

    name = models.CharField(_("name"), max_length=100)
    language = models.CharField(_("language"), max_length=8, default="fr")
    body = models.TextField(_("text"))

    class Meta:
        verbose_name = _("macro")
        verbose_name_plural = _("macros")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "name", "language"], name="macro_unique_name_per_merchant")
        ]

    def __str__(self) -> str:
        return self.name


class AgentAction(MerchantOwned):
    """What an agent did to an order from a ticket, and what the warehouse answered (done or refused, and why)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="actions")
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(_("action"), max_length=30)
    outcome = models.CharField(_("outcome"), max_length=10, choices=[("done", _("Done")), ("refused", _("Refused"))])
    code = models.CharField(_("refusal code"), max_length=60, blank=True)
    message = models.TextField(_("message"), blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor_label = models.CharField(_("by"), max_length=150, blank=True)
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("agent action")
        verbose_name_plural = _("agent actions")
        ordering = ["-at", "-id"]


class RmaStatus(models.TextChoices):
    REQUESTED = domain.RMA_REQUESTED, _("Requested")
    LABEL_REQUESTED = domain.RMA_LABEL_REQUESTED, _("Label requested")
    IN_TRANSIT = domain.RMA_IN_TRANSIT, _("On its way back")
    RECEIVED = domain.RMA_RECEIVED, _("Received")
    CLOSED = domain.RMA_CLOSED, _("Closed")
    CANCELLED = domain.RMA_CANCELLED, _("Cancelled")


class RmaKind(models.TextChoices):
    RETURN = "return", _("Return for a refund")
    EXCHANGE = "exchange", _("Exchange")


class Rma(MerchantOwned, TimeStampedModel, VersionedModel):
    """A return merchandise authorisation: which lines of an order come back, why, and where they stand."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="rmas")
    kind = models.CharField(_("kind"), max_length=10, choices=RmaKind.choices, default=RmaKind.RETURN)
    reason = models.CharField(_("reason"), max_length=20, choices=Category.choices)
    note = models.TextField(_("note"), blank=True)
    status = models.CharField(_("status"), max_length=20, choices=RmaStatus.choices, default=RmaStatus.REQUESTED)
    label_requested_at = models.DateTimeField(_("label requested at"), null=True, blank=True)
    # An exchange's replacement order, made through orders intake when the exchange opens.
    replacement_order = models.ForeignKey(
        "orders.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("return (RMA)")
        verbose_name_plural = _("returns (RMA)")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        return f"RMA{self.pk}"


class RmaLine(models.Model):
    rma = models.ForeignKey(Rma, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey("orders.OrderLine", on_delete=models.PROTECT, related_name="+")
    sku_code = models.CharField(_("SKU code"), max_length=64)
    quantity = models.PositiveIntegerField(_("quantity"))

    class Meta:
        verbose_name = _("return line")
        verbose_name_plural = _("return lines")
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="rma_line_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.sku_code} × {self.quantity}"


class RefundState(models.TextChoices):
    RECORDED = "recorded", _("Recorded (no shop connector to push it)")
    PUSHED = "pushed", _("Sent to the shop")
    FAILED = "failed", _("Push to the shop failed")


class Refund(MerchantOwned, TimeStampedModel):
    """Money given back to a shopper for an order: recorded here, pushed to the shop through its connector."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="refunds")
    rma = models.ForeignKey(Rma, on_delete=models.SET_NULL, null=True, blank=True, related_name="refunds")
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    reason = models.CharField(_("reason"), max_length=500)
    state = models.CharField(_("state"), max_length=10, choices=RefundState.choices, default=RefundState.RECORDED)
    external_id = models.CharField(_("shop's refund id"), max_length=100, blank=True)
    push_error = models.CharField(_("push error"), max_length=500, blank=True)
    actor_label = models.CharField(_("by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]


class ReturnGrade(models.TextChoices):
    A = domain.GRADE_A, _("A: resell")
    B = domain.GRADE_B, _("B: repair")
    C = domain.GRADE_C, _("C: destroy")


class ReturnUnitState(models.TextChoices):
    RECEIVED = domain.UNIT_RECEIVED, _("Received, to grade")
    TO_RESTOCK = domain.UNIT_TO_RESTOCK, _("Graded A, to put back in storage")
    RESTOCKED = domain.UNIT_RESTOCKED, _("Back in storage")
    QUARANTINED = domain.UNIT_QUARANTINED, _("In quarantine")


class ReturnUnit(MerchantOwned):
    """One unit of a return scanned at the returns desk, its grade and where it went.

    The stock itself lives in the inventory's ledger: scanned in at ``location`` (the returns zone, status
    quarantine) by ``stock_receive``, then moved by ``stock_move`` to storage (A, after the restock scan at
    ``put_at``) or to the quarantine zone (B, C). This row is the desk's own task list and evidence (note, photo).
    """

    rma = models.ForeignKey(Rma, on_delete=models.CASCADE, related_name="units")
    rma_line = models.ForeignKey(RmaLine, on_delete=models.PROTECT, related_name="units")
    sku = models.ForeignKey("catalog.Sku", on_delete=models.PROTECT, related_name="+")
    lot = models.CharField(_("lot"), max_length=64, blank=True)
    location = models.ForeignKey("warehouse.Location", on_delete=models.PROTECT, related_name="+")
    state = models.CharField(
        _("state"), max_length=12, choices=ReturnUnitState.choices, default=ReturnUnitState.RECEIVED
    )
    grade = models.CharField(_("grade"), max_length=1, choices=ReturnGrade.choices, blank=True)
    note = models.TextField(_("note"), blank=True)
    photo = models.BinaryField(_("photo"), null=True, blank=True)
    photo_type = models.CharField(_("photo type"), max_length=40, blank=True)
    restock_to = models.ForeignKey(
        "warehouse.Location", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    put_at = models.ForeignKey("warehouse.Location", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    received_at = models.DateTimeField(_("received at"))
    received_by = models.CharField(_("received by"), max_length=150, blank=True)
    graded_at = models.DateTimeField(_("graded at"), null=True, blank=True)
    graded_by = models.CharField(_("graded by"), max_length=150, blank=True)
    done_at = models.DateTimeField(_("put away at"), null=True, blank=True)

    class Meta:
        verbose_name = _("returned unit")
        verbose_name_plural = _("returned units")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.rma_id}/{self.sku_id} {self.state}"
