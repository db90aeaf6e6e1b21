"""Mail in and out of the support mailbox: POP3 polling (stdlib ``poplib``), SMTP sending (``smtplib``), replies
threaded by Message-ID / In-Reply-To / References.

Nothing is lost:
- a mail is deleted from the mailbox only after its ticket message is committed; polling twice is harmless (one
  stored message per Message-ID and merchant; a mail without a Message-ID gets one from the digest of its bytes);
- a mail larger than ``MAIL_MAX_BYTES`` is not downloaded whole: its headers and first lines (POP3 ``TOP``) make
  the ticket, marked ``too_large``, and the mail stays on the server for someone to read there;
- a malformed header (an unparsable From, a broken encoded word) is noted in the message's ``problems`` and the
  rest of the mail is kept; attachments are listed by name and size, never stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import poplib
import re
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, make_msgid, parseaddr
from html import unescape
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from quai.core import clock
from quai.core.errors import NotFound, ValidationFailed
from quai.integrations.domain import backoff
from quai.service.models import MessageKind, SendState, ServiceSettings, Ticket, TicketMessage, TicketStatus
from quai.service.services.tickets import IncomingMessage, service_settings, ticket_open, ticket_shopper_message

logger = logging.getLogger(__name__)

MAIL_MAX_BYTES = 10 * 1024 * 1024
#: Failed answers are tried again after 1, 2, 4… minutes (capped at an hour), then given up after 8 attempts.
SEND_MAX_ATTEMPTS = 8
SEND_BACKOFF_BASE = timedelta(minutes=1)
SEND_BACKOFF_CAP = timedelta(hours=1)
TOP_LINES = 200
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_TICKET_TAG = re.compile(r"\[T(\d{1,12})\]")
_TAGS = re.compile(r"<[^>]+>")


def outgoing_message_id(ticket: Ticket, *, settings: ServiceSettings | None = None) -> str:
    """A fresh Message-ID for an answer on ``ticket``, under the support address's domain (``settings``: the
    merchant's service settings when the caller has read them already)."""
    if settings is None:
        settings = service_settings(merchant_id=ticket.merchant_id)
    domain = settings.support_email.rpartition("@")[2] or "quai.invalid"
    return make_msgid(idstring=f"T{ticket.pk}", domain=domain)


@dataclass(frozen=True)
class ParsedMail:
    message: IncomingMessage
    message_ids_referenced: list[str]


def _header(mail: Any, name: str, problems: list[str]) -> str:
    try:
        value = mail.get(name)
    except Exception:
        problems.append(f"unreadable_header:{name}")
        raw = mail.get_all(name, failobj=[]) if hasattr(mail, "get_all") else []
        return str(raw[0]) if raw else ""
    if value is None:
        return ""
    defects = getattr(value, "defects", ())
    if defects:
        problems.append(f"malformed_header:{name}")
    return str(value)


def mail_parse(raw: bytes, *, truncated_size: int | None = None) -> ParsedMail:
    """A raw RFC 5322 mail as the shopper's message; never raises on a malformed mail (its problems are listed)."""
    problems: list[str] = []
    mail = BytesParser(policy=policy.default).parsebytes(raw)
    if mail.defects:
        problems.append("malformed_structure")
    from_header = _header(mail, "From", problems)
    name, address = parseaddr(from_header)
    if "@" not in address:
        problems.append("no_sender_address")
        address = ""
    message_id_match = _MESSAGE_ID.search(_header(mail, "Message-ID", problems))
    message_id = message_id_match.group(0) if message_id_match else f"<{hashlib.sha256(raw).hexdigest()}@quai.invalid>"
    in_reply_to = " ".join(_MESSAGE_ID.findall(_header(mail, "In-Reply-To", problems)))
    references = " ".join(_MESSAGE_ID.findall(_header(mail, "References", problems)))
    subject = _header(mail, "Subject", problems).strip()
    body = ""
    attachments: list[dict[str, Any]] = []
    try:
        part = mail.get_body(preferencelist=("plain", "html"))
        if part is not None:
            content = part.get_content()
            body = content if part.get_content_type() == "text/plain" else unescape(_TAGS.sub(" ", content))
        for attachment in mail.iter_attachments():
            payload = attachment.get_payload(decode=True) or b""
            attachments.append({"name": attachment.get_filename() or "", "size": len(payload)})
    except Exception:
        problems.append("unreadable_body")
    if truncated_size is not None:
        problems.append("too_large")
        body = (
            _("[This mail is %(size)d bytes, over the %(max)d bytes read here: it was left on the mail server.]")
            % {"size": truncated_size, "max": MAIL_MAX_BYTES}
            + "\n\n"
            + body
        )
    if not body.strip():
        body = subject or _("(empty message)")
    referenced = [*_MESSAGE_ID.findall(in_reply_to), *reversed(_MESSAGE_ID.findall(references))]
    return ParsedMail(
        message=IncomingMessage(
            body=body.replace("\x00", ""),
            subject=subject.replace("\x00", "") or body.strip().splitlines()[0][:200],
            email=address,
            name=name,
            message_id=message_id,
            in_reply_to=in_reply_to,
            references=references,
            attachments=attachments,
            problems=problems,
        ),
        message_ids_referenced=referenced,
    )


def _thread_of(*, merchant_id: int, parsed: ParsedMail) -> Ticket | None:
    """The ticket a mail answers: by the Message-IDs it refers to, else by the [T123] tag of our subjects when the
    sender is that ticket's requester. A closed ticket is not reopened: the mail makes a new ticket."""
    ids = parsed.message_ids_referenced
    if ids:
        known = {
            m.message_id: m.ticket
            for m in TicketMessage.objects.filter(merchant_id=merchant_id, message_id__in=ids).select_related("ticket")
        }
        for message_id in ids:
            ticket = known.get(message_id)
            if ticket is not None and ticket.status != TicketStatus.CLOSED:
                return ticket
    tag = _TICKET_TAG.search(parsed.message.subject)
    if tag and parsed.message.email:
        ticket = Ticket.objects.filter(
            merchant_id=merchant_id, pk=int(tag.group(1)), requester_email=parsed.message.email.lower()
        ).first()
        if ticket is not None and ticket.status != TicketStatus.CLOSED:
            return ticket
    return None


def mail_ingest(*, merchant_id: int, raw: bytes, truncated_size: int | None = None) -> TicketMessage:
    """One mail of the support mailbox as a ticket message: a reply joins its thread, anything else opens a ticket.

    Idempotent by Message-ID: the same mail again answers the message already stored.
    """
    parsed = mail_parse(raw, truncated_size=truncated_size)
    existing = TicketMessage.objects.filter(merchant_id=merchant_id, message_id=parsed.message.message_id).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            ticket = _thread_of(merchant_id=merchant_id, parsed=parsed)
            if ticket is not None:
                return ticket_shopper_message(ticket=ticket, message=parsed.message)
            opened = ticket_open(merchant_id=merchant_id, channel="email", message=parsed.message, actor="mail")
            return opened.messages.filter(kind=MessageKind.INBOUND).order_by("id").first()  # type: ignore[return-value]
    except IntegrityError:
        # The same mail stored meanwhile by another poller: answer it.
        return TicketMessage.objects.get(merchant_id=merchant_id, message_id=parsed.message.message_id)


@dataclass(frozen=True)
class PollReport:
    fetched: int
    deleted: int
    left_on_server: int
    failed: int


def mailbox_poll(*, settings: ServiceSettings, timeout: float = 30.0) -> PollReport:
    """Fetch the merchant's support mailbox over POP3 and turn each mail into a ticket message."""
    if not settings.mail_host:
        raise ValidationFailed(
            _("No support mailbox is set up for this merchant."), code="mailbox_not_configured", details={}
        )
    connection: poplib.POP3
    if settings.mail_ssl:
        connection = poplib.POP3_SSL(settings.mail_host, settings.mail_port, timeout=timeout)
    else:
        connection = poplib.POP3(settings.mail_host, settings.mail_port, timeout=timeout)
    fetched = deleted = left = failed = 0
    try:
        connection.user(settings.mail_username)
        connection.pass_(settings.mail_password)
        _response, listing, _octets = connection.list()
        for entry in listing:
            number_text, _space, size_text = entry.decode("ascii", "replace").partition(" ")
            number, size = int(number_text), int(size_text or 0)
            too_large = size > MAIL_MAX_BYTES
            try:
                if too_large:
                    _response, lines, _octets = connection.top(number, TOP_LINES)
                else:
                    _response, lines, _octets = connection.retr(number)
                mail_ingest(
                    merchant_id=settings.merchant_id,
                    raw=b"\r\n".join(lines) + b"\r\n",
                    truncated_size=size if too_large else None,
                )
            except (poplib.error_proto, OSError):
                raise
            except Exception:
                logger.exception("support mail %s of merchant %s could not be stored", number, settings.merchant_id)
                failed += 1
                continue
            fetched += 1
            if too_large:
                left += 1
            else:
                connection.dele(number)
                deleted += 1
    finally:
        # QUIT commits the deletions; a dropped connection deletes nothing.
        with contextlib.suppress(poplib.error_proto, OSError):
            connection.quit()
    return PollReport(fetched=fetched, deleted=deleted, left_on_server=left, failed=failed)


def mailboxes_poll() -> int:
    """Poll every configured support mailbox (the beat task); one that fails does not stop the others."""
    total = 0
    for settings in ServiceSettings.objects.exclude(mail_host="").order_by("pk"):
        try:
            total += mailbox_poll(settings=settings).fetched
        except (poplib.error_proto, OSError, ValidationFailed):
            logger.exception("support mailbox of merchant %s could not be polled", settings.merchant_id)
    return total


def ticket_message_send(*, message_id: int, timeout: float = 30.0) -> TicketMessage:
    """Mail an agent's answer over SMTP, threaded under the shopper's mails (In-Reply-To, References)."""
    message = TicketMessage.objects.select_related("ticket").get(pk=message_id)
    if message.send_state != SendState.PENDING:
        return message  # sent already (a retried task), or nothing to send
    ticket = message.ticket
    settings = service_settings(merchant_id=ticket.merchant_id)
    thread = list(
        TicketMessage.objects.filter(ticket=ticket, kind=MessageKind.INBOUND)
        .exclude(message_id="")
        .order_by("created_at", "id")
    )
    mail = EmailMessage()
    mail["From"] = settings.support_email or "support@quai.invalid"
    mail["To"] = ticket.requester_email
    subject = ticket.subject if ticket.subject.lower().startswith("re:") else f"Re: {ticket.subject}"
    mail["Subject"] = f"{subject} [{ticket.reference}]"
    mail["Message-ID"] = message.message_id
    if thread:
        last = thread[-1]
        mail["In-Reply-To"] = last.message_id
        chain = [*_MESSAGE_ID.findall(last.references), last.message_id]
        mail["References"] = " ".join(dict.fromkeys(chain))
    mail.set_content(message.body)
    try:
        with smtplib.SMTP(settings.smtp_host or "localhost", settings.smtp_port, timeout=timeout) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(mail, to_addrs=[address for _n, address in getaddresses([ticket.requester_email])])
    except (smtplib.SMTPException, OSError) as exc:
        attempts = message.send_attempts + 1
        retry_at = (
            clock.now() + backoff(attempts, base=SEND_BACKOFF_BASE, cap=SEND_BACKOFF_CAP, key=str(message.pk))
            if attempts < SEND_MAX_ATTEMPTS
            else None
        )
        TicketMessage.objects.filter(pk=message.pk).update(
            send_state=SendState.FAILED, send_error=str(exc)[:500], send_attempts=attempts, next_send_at=retry_at
        )
        message.refresh_from_db()
        return message
    TicketMessage.objects.filter(pk=message.pk).update(
        send_state=SendState.SENT, send_error="", send_attempts=message.send_attempts + 1, next_send_at=None
    )
    message.refresh_from_db()
    return message


def mails_retry_due(*, limit: int = 100, timeout: float = 30.0) -> int:
    """Beat: try again the failed answers whose wait is over; each is claimed by one conditional update (two
    sweeps never send the same mail twice). Returns how many were tried."""
    now = clock.now()
    due = list(
        TicketMessage.objects.filter(send_state=SendState.FAILED, next_send_at__lte=now)
        .order_by("next_send_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    tried = 0
    for pk in due:
        claimed = TicketMessage.objects.filter(pk=pk, send_state=SendState.FAILED, next_send_at__lte=now).update(
            send_state=SendState.PENDING, next_send_at=None
        )
        if claimed:
            ticket_message_send(message_id=pk, timeout=timeout)
            tried += 1
    return tried


def ticket_message_resend(*, scope: Any, message_id: int) -> TicketMessage:
    """An agent sends a failed answer again now (also one the sweep gave up on)."""
    found = TicketMessage.objects.within(scope).filter(pk=message_id, send_state=SendState.FAILED)
    if not found.update(send_state=SendState.PENDING, next_send_at=None):
        raise NotFound(_("No unsent answer with this id."), code="ticket_message_not_found")
    return ticket_message_send(message_id=message_id)
