"""Shoppers per merchant, de-duplicated by email and phone, linked to their orders; GDPR export and erasure.

Identity: the email lower-cased and stripped (as orders intake stores it), the phone in E.164 through orders'
own rule (``quai.orders.domain.phone_normalise``). A shopper seen with a known email or a known phone is that
customer; seen with an email of one customer and the phone of another, the email wins (phones are shared within
families and change hands) and the phone is left where it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import NotFound
from quai.core.events import Envelope
from quai.core.outbox import event_record
from quai.core.rows import ids_in, ids_param, rows_insert, texts_in, texts_param
from quai.core.states import actor_of
from quai.orders import domain as orders_domain
from quai.orders import selectors as orders_selectors
from quai.orders.events import OrderReceived
from quai.orders.services.gdpr import order_personal_data_erase, personal_data_of
from quai.service.events import CustomerErased
from quai.service.models import Customer, CustomerOrder, MessageKind, Refund, Rma, Ticket, TicketMessage
from quai.tenants.scope import Scope

ERASED = "[erased]"


def email_normalise(email: str) -> str:
    """The email as orders intake stores it: stripped and lower-cased (empty stays empty)."""
    return email.strip().lower()


def phone_key(phone: str, *, country: str) -> str:
    """The phone in E.164 by orders' rule, or "" when it is not a valid number (then it identifies no one)."""
    value = orders_domain.phone_normalise(phone, country=country or "FR")
    return value if isinstance(value, str) else ""


def customer_match(
    *, merchant_id: int, email: str = "", phone: str = "", country: str = "FR", name: str = ""
) -> Customer | None:
    """The customer of ``merchant_id`` with this email or phone, created when new; None without either.

    Fills in what the customer lacked (a phone first seen now, a name). Safe under concurrency: two requests
    creating the same shopper meet the partial unique index; the loser reads the winner's row.
    """
    email = email_normalise(email)
    phone = phone_key(phone, country=country) if phone else ""
    if not email and not phone:
        return None
    for _attempt in range(2):
        try:
            with transaction.atomic():
                return _customer_match_once(merchant_id=merchant_id, email=email, phone=phone, name=name)
        except IntegrityError:
            continue  # a twin inserted the same email or phone meanwhile: read it on the next pass
    return _customer_match_once(merchant_id=merchant_id, email=email, phone=phone, name=name)


def _customer_match_once(*, merchant_id: int, email: str, phone: str, name: str) -> Customer:
    found = list(
        Customer.objects.select_for_update()
        .filter(merchant_id=merchant_id)
        .filter((Q(email=email) if email else Q(pk__in=[])) | (Q(phone=phone) if phone else Q(pk__in=[])))
        .order_by("pk")
    )
    by_email = next((c for c in found if email and c.email == email), None)
    by_phone = next((c for c in found if phone and c.phone == phone), None)
    customer = by_email or by_phone
    if customer is None:
        return Customer.objects.create(merchant_id=merchant_id, email=email, phone=phone, name=name[:200])
    changed = []
    if email and not customer.email:
        customer.email = email
        changed.append("email")
    if phone and not customer.phone and by_phone is None:
        customer.phone = phone
        changed.append("phone")
    if name and not customer.name:
        customer.name = name[:200]
        changed.append("name")
    if changed:
        customer.save(update_fields=changed)
    return customer


def customer_link_order(*, order: Any) -> Customer | None:
    """Link an order to its shopper's customer (created when new); an order already linked stays as it is."""
    existing = CustomerOrder.objects.filter(order_id=order.pk).select_related("customer").first()
    if existing is not None:
        return existing.customer
    customer = customer_match(
        merchant_id=order.merchant_id,
        email=order.shopper_email,
        phone=order.shopper_phone,
        country=order.country,
        name=order.shopper_name,
    )
    if customer is None:
        return None
    CustomerOrder.objects.get_or_create(order_id=order.pk, defaults={"customer": customer})
    return customer


def on_order_received(event: OrderReceived, envelope: Envelope) -> None:
    """Subscribed to ``order.received``: every new order finds (or makes) its customer. Idempotent by order."""
    try:
        order = orders_selectors.order_get(scope=Scope.system("service: customer link"), order_id=event.order_id)
    except NotFound:
        return  # the order is gone (its merchant's data deleted): nothing to link
    with transaction.atomic():
        customer_link_order(order=order)


def on_orders_received(items: Sequence[tuple[OrderReceived, Envelope]]) -> None:
    """Batch form of ``on_order_received`` (``subscribe(..., batch=)``): exactly what it does for each event in
    turn — the same customers created or filled in, the same links — in a handful of queries per relay batch.

    The batch's orders with whether each is linked already, and the customers their emails and phones name, are
    read in one query each (``_orders_to_link``, ``_customers_named``: statements written once, the ids, emails and
    phones one parameter each, rows as tuples — the ORM compiled both queries again on every relay batch and made a
    ``Customer`` per row, 60 % of this handler's CPU in the intake bench's relay); the per-event rules
    (``_customer_match_once``: the email wins over the phone, a phone already someone's is left where it is, only
    empty fields are filled) then run in memory, in event order, so an order sees the customers the batch's earlier
    orders made. New customers are one insert, the links another.

    No row lock on the customers: during a sale every order of a repeat shopper names the same row, and a lock
    held until the relay's commit made concurrent relays queue behind each other. Fills are guarded updates
    (``WHERE field = ''``: the first writer wins, as under the lock); a shopper created meanwhile by another relay
    meets the unique index, the batch is undone and the relay runs ``on_order_received`` per event, which retries.
    """
    order_ids = [event.order_id for event, _envelope in items]
    # (merchant, email, phone, country, name, linked) by order id: no model instance per order.
    orders = _orders_to_link(order_ids)
    phones: dict[tuple[str, str], str] = {}
    shoppers: list[tuple[int, int, str, str, str]] = []  # order, merchant, email, phone, name — in event order
    seen: set[int] = set()
    for order_id in order_ids:
        order = orders.get(order_id)
        if order is None or order[5] or order_id in seen:
            continue  # gone (its merchant's data deleted), or already linked: nothing to do, as per event
        seen.add(order_id)
        merchant_id, shopper_email, shopper_phone, country, shopper_name, _linked = order
        email = email_normalise(shopper_email)
        phone = ""
        if shopper_phone:
            key = (shopper_phone, country)
            if key not in phones:
                phones[key] = phone_key(shopper_phone, country=country)
            phone = phones[key]
        if email or phone:
            shoppers.append((order_id, merchant_id, email, phone, shopper_name))
    if not shoppers:
        return
    # A customer as a list [id (None until inserted), merchant, email, phone, name], shared by every order it links.
    by_email: dict[tuple[int, str], list[Any]] = {}
    by_phone: dict[tuple[int, str], list[Any]] = {}
    for customer in _customers_named(shoppers):
        _pk, merchant_id, email, phone, _name = customer
        if email:
            by_email.setdefault((merchant_id, email), customer)
        if phone:
            by_phone.setdefault((merchant_id, phone), customer)
    created: list[list[Any]] = []
    fills: dict[int, dict[str, str]] = {}  # existing customer -> the empty fields this batch fills
    links: list[tuple[int, list[Any]]] = []
    for order_id, merchant_id, email, phone, name in shoppers:
        email_match = by_email.get((merchant_id, email)) if email else None
        phone_match = by_phone.get((merchant_id, phone)) if phone else None
        match = email_match or phone_match
        if match is None:
            customer = [None, merchant_id, email, phone, name[:200]]
            created.append(customer)
        else:
            customer = match
            changed: dict[str, str] = {}
            if email and not customer[2]:
                changed["email"] = customer[2] = email
            if phone and not customer[3] and phone_match is None:
                changed["phone"] = customer[3] = phone
            if name and not customer[4]:
                changed["name"] = customer[4] = name[:200]
            if changed and customer[0] is not None:
                fills.setdefault(customer[0], {}).update(changed)
        if customer[2]:
            by_email.setdefault((merchant_id, customer[2]), customer)
        if customer[3]:
            by_phone.setdefault((merchant_id, customer[3]), customer)
        links.append((order_id, customer))
    if created:
        # ``bulk_create``'s rows (the other fields their defaults: ``created_at``/``updated_at`` the clock's now),
        # their ids returned in the rows' order.
        ids = rows_insert(
            Customer,
            [{"merchant_id": c[1], "email": c[2], "phone": c[3], "name": c[4]} for c in created],
            returning=("id",),
        )
        for customer, (pk,) in zip(created, ids, strict=True):
            customer[0] = pk
    # ``updated_at`` moves with a fill, as the per-event handler's ``save(update_fields=…)`` moves it.
    filled_at = clock.now()
    for customer_id, changed in fills.items():
        for field, value in changed.items():
            Customer.objects.filter(pk=customer_id, **{field: ""}).update(**{field: value, "updated_at": filled_at})
    # ``bulk_create(ignore_conflicts=True)``'s rows, without a model instance per link.
    linked_at = timezone.now()
    rows_insert(
        CustomerOrder,
        [{"order_id": order_id, "customer_id": customer[0], "linked_at": linked_at} for order_id, customer in links],
        skip_conflicts=True,
    )


def _orders_to_link(order_ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """``order id → (merchant id, shopper email, phone, country, name, linked)`` of the orders among ``order_ids``
    (every merchant's: the system scope), ``linked`` whether the order has its customer already: ONE statement
    written once (``_orders_to_link_sql``), the ids one parameter. The same rows as
    ``order_list(scope=Scope.system(…)).filter(pk__in=ids).values_list(…)`` and
    ``CustomerOrder.objects.filter(order_id__in=…)``: ``test_customer_link_reads``."""
    if not order_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_orders_to_link_sql(connection.vendor), [ids_param(dict.fromkeys(order_ids))])
        return {row[0]: (row[1], row[2], row[3], row[4], row[5], bool(row[6])) for row in cursor.fetchall()}


@cache
def _orders_to_link_sql(vendor: str) -> str:
    from quai.orders.models import Order

    quote = connection.ops.quote_name
    column = {str(field.attname): quote(str(field.column)) for field in Order._meta.concrete_fields}
    link = quote(str(CustomerOrder._meta.get_field("order").column))
    names = ("merchant_id", "shopper_email", "shopper_phone", "country", "shopper_name")
    return (
        f"SELECT o.{column['id']}, {', '.join(f'o.{column[name]}' for name in names)},"
        f" EXISTS(SELECT 1 FROM {quote(CustomerOrder._meta.db_table)} l WHERE l.{link} = o.{column['id']})"
        f" FROM {quote(Order._meta.db_table)} o WHERE o.{column['id']} {ids_in(vendor)}"
    )


def _customers_named(shoppers: Sequence[tuple[int, int, str, str, str]]) -> list[list[Any]]:
    """The customers of the shoppers' merchants with one of their emails or phones (per merchant its own:
    ``(merchant, email)`` or ``(merchant, phone)`` among the shoppers'), in id order, each as a list
    ``[id, merchant id, email, phone, name]``: ONE statement written once (``_customers_named_sql``) reading the
    customers of any of the merchants with any of the emails or phones (the unique indexes' own columns), the
    pairs kept here. The same rows as ``Customer.objects.filter(Q(merchant_id=m) & (Q(email__in=…) |
    Q(phone__in=…)) | …).order_by("pk")``: ``test_customer_link_reads``."""
    emails = {(merchant_id, email) for _o, merchant_id, email, _p, _n in shoppers if email}
    phones = {(merchant_id, phone) for _o, merchant_id, _e, phone, _n in shoppers if phone}
    merchants = sorted({merchant_id for _o, merchant_id, *_rest in shoppers})
    params = [
        ids_param(merchants),
        texts_param(sorted({email for _m, email in emails})),
        texts_param(sorted({phone for _m, phone in phones})),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_customers_named_sql(connection.vendor), params)
        rows = cursor.fetchall()
    return [
        list(row) for row in rows if (row[2] and (row[1], row[2]) in emails) or (row[3] and (row[1], row[3]) in phones)
    ]


@cache
def _customers_named_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    column = {str(field.attname): quote(str(field.column)) for field in Customer._meta.concrete_fields}
    email, phone = column["email"], column["phone"]
    # ``<> ''``: the unique indexes' own condition (no shopper's email or phone is empty here), so the planner may
    # take them; the ORM's form inlined the values, from which it proves the same.
    return (
        f"SELECT {column['id']}, {column['merchant_id']}, {email}, {phone}, {column['name']}"
        f" FROM {quote(Customer._meta.db_table)} WHERE {column['merchant_id']} {ids_in(vendor)}"
        f" AND (({email} <> '' AND {email} {texts_in(vendor)}) OR ({phone} <> '' AND {phone} {texts_in(vendor)}))"
        f" ORDER BY {column['id']}"
    )


def customer_get(*, scope: Scope, customer_id: int) -> Customer:
    customer = Customer.objects.within(scope).filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(_("Customer not found."), code="customer_not_found", details={"customer_id": customer_id})
    return customer


def customer_export(*, scope: Scope, customer_id: int) -> dict[str, Any]:
    """Everything Quai holds about one shopper, as JSON-ready data (GDPR art. 15 and 20)."""
    customer = customer_get(scope=scope, customer_id=customer_id)
    order_ids = list(CustomerOrder.objects.filter(customer=customer).values_list("order_id", flat=True))
    orders = []
    for order_id in sorted(order_ids):
        order = orders_selectors.order_get(scope=scope, order_id=order_id)
        orders.append(
            {
                "order_id": order.pk,
                "external_id": order.external_id,
                "channel": order.channel,
                "status": order.status,
                "created_at": order.created_at.isoformat(),
                "total": str(order.total),
                "currency": order.currency,
                "personal_data": personal_data_of(order),
                "lines": [
                    {"sku_code": line.sku_code, "quantity": line.quantity, "unit_price": str(line.unit_price)}
                    for line in order.lines.all()
                ],
            }
        )
    tickets = []
    for ticket in Ticket.objects.filter(merchant_id=customer.merchant_id, customer=customer).order_by("pk"):
        tickets.append(
            {
                "ticket": ticket.reference,
                "subject": ticket.subject,
                "channel": ticket.channel,
                "status": ticket.status,
                "created_at": ticket.created_at.isoformat(),
                "requester_email": ticket.requester_email,
                "requester_name": ticket.requester_name,
                "messages": [
                    {"at": m.created_at.isoformat(), "kind": m.kind, "from": m.author_label, "text": m.body}
                    for m in ticket.messages.exclude(kind=MessageKind.NOTE)
                ],
            }
        )
    returns = [
        {"rma": rma.reference, "order_id": rma.order_id, "status": rma.status, "reason": rma.reason}
        for rma in Rma.objects.filter(merchant_id=customer.merchant_id, order_id__in=order_ids).order_by("pk")
    ]
    refunds = [
        {"order_id": r.order_id, "amount": str(r.amount), "currency": r.currency, "state": r.state}
        for r in Refund.objects.filter(merchant_id=customer.merchant_id, order_id__in=order_ids).order_by("pk")
    ]
    return {
        "customer": {
            "id": customer.pk,
            "name": customer.name,
            "email": customer.email,
            "phone": customer.phone,
            "language": customer.language,
            "created_at": customer.created_at.isoformat(),
            "erased_at": customer.erased_at.isoformat() if customer.erased_at else None,
        },
        "orders": orders,
        "tickets": tickets,
        "returns": returns,
        "refunds": refunds,
        "exported_at": clock.now().isoformat(),
    }


@transaction.atomic
def customer_erase(*, scope: Scope, customer_id: int, actor: Any = None) -> Customer:
    """Erase a shopper's personal data (GDPR art. 17): the customer, their orders' personal fields (through
    orders' own erase step) and their tickets' texts; orders, lines, statuses, returns and refunds stay."""
    customer = customer_get(scope=scope, customer_id=customer_id)
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    order_ids = sorted(CustomerOrder.objects.filter(customer=customer).values_list("order_id", flat=True))
    for order_id in order_ids:
        order_personal_data_erase(order=order_id, actor=actor)
    tickets = list(Ticket.objects.filter(customer=customer).order_by("pk"))
    ticket_ids = [t.pk for t in tickets]
    Ticket.objects.filter(pk__in=ticket_ids).update(subject=ERASED, requester_email="", requester_name="")
    TicketMessage.objects.filter(ticket_id__in=ticket_ids).update(body=ERASED, author_label="", attachments=[])
    customer.name, customer.email, customer.phone = "", "", ""
    customer.erased_at = clock.now()
    customer.save(update_fields=["name", "email", "phone", "erased_at"])
    event_record(
        CustomerErased(customer_id=customer.pk, order_ids=order_ids, ticket_ids=ticket_ids),
        merchant_id=customer.merchant_id,
    )
    return customer


def actor_label(actor: Any) -> str:
    return actor_of(actor).label
