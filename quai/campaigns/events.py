from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from quai.core.events import Event


@dataclass(frozen=True)
class CampaignStatusChanged(Event):
    """An event sale moved along its state machine (draft → planned → open → closing → closed)."""

    name: ClassVar[str] = "campaign.status_changed"
    aggregate: ClassVar[str] = "campaign"

    campaign_id: int
    code: str
    from_status: str
    to_status: str
    reason: str = ""

    @property
    def aggregate_id(self) -> int:
        return self.campaign_id
