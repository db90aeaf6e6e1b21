"""Customer service's async work: mailing agents' answers, polling support mailboxes, the SLA sweep."""

from __future__ import annotations

import logging

from quai.celery import app
from quai.service import services
from quai.service.models import TicketMessage

logger = logging.getLogger(__name__)


@app.task(name="quai.service.tasks.ticket_message_send", ignore_result=True)
def ticket_message_send(message_id: int) -> str:
    """Mail one answer (SMTP); a failure is kept on the message (``send_state`` failed, with the error)."""
    try:
        return str(services.ticket_message_send(message_id=message_id).send_state)
    except TicketMessage.DoesNotExist:
        # A task outlives its row when the ticket was erased (a merchant's data deleted) or when a broker kept
        # tasks from another database: nothing to mail, and a retry would fail the same way.
        logger.info("ticket message %s is gone: nothing to mail", message_id)
        return "gone"


@app.task(name="quai.service.tasks.support_mailboxes_poll", ignore_result=True)
def support_mailboxes_poll() -> int:
    return services.mailboxes_poll()


@app.task(name="quai.service.tasks.tickets_sla_sweep", ignore_result=True)
def tickets_sla_sweep() -> int:
    """Warn about tickets whose SLA is about to breach (once per clock)."""
    return services.tickets_sla_sweep()


@app.task(name="quai.service.tasks.mails_retry_due", ignore_result=True)
def mails_retry_due() -> int:
    """Try again the answers whose mail failed, once their wait is over."""
    return services.mails_retry_due()


# Beat's schedule lives in settings; these join it from here so the app carries its own periodic work.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "service-tickets-sla-sweep": {"task": "quai.service.tasks.tickets_sla_sweep", "schedule": 60.0},
    "service-mailboxes-poll": {"task": "quai.service.tasks.support_mailboxes_poll", "schedule": 60.0},
    "service-mails-retry": {"task": "quai.service.tasks.mails_retry_due", "schedule": 60.0},
}
