"""The accounts the tools answer about, and how an account's health score is computed.

The book of accounts is a fixed sample so that the example runs without a CRM; a real
deployment would load it from one. The score is the usual customer-success blend of
adoption, support load, sentiment and time to renewal, each with a fixed share of 100.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Segment = Literal["enterprise", "mid-market", "smb"]


@dataclass(frozen=True)
class Account:
    """One customer account as customer success tracks it."""

    id: str
    name: str
    segment: Segment
    seats: int
    active_users: int
    open_tickets: int
    nps: int
    """Latest Net Promoter Score answer of the account, -100 to 100."""
    renewal_days: int
    """Days until the contract renews."""


def health(account: Account) -> dict[str, int]:
    """The score (0-100) and its parts: adoption 50, support 20, sentiment 20, renewal 10.

    Adoption is the share of paid seats in use; every open ticket costs 5 of the support
    points; sentiment maps NPS -100..100 onto 0..20; a renewal more than 90 days away
    scores 10, one within 30 days 0, in between 5 (less time to fix what is wrong).
    """
    adoption = round(50 * min(1.0, account.active_users / account.seats)) if account.seats else 0
    support = max(0, 20 - 5 * account.open_tickets)
    sentiment = round((account.nps + 100) / 10)
    renewal = 10 if account.renewal_days > 90 else 5 if account.renewal_days > 30 else 0
    parts = {"adoption": adoption, "support": support, "sentiment": sentiment, "renewal": renewal}
    return {"score": sum(parts.values()), **parts}


def summary(account: Account) -> dict[str, Any]:
    """The account's fields and its health score."""
    return {**asdict(account), "health": health(account)["score"]}


SAMPLE_BOOK: tuple[Account, ...] = (
    Account("acme", "Acme Corp", "enterprise", 500, 460, 1, 40, 200),
    Account("globex", "Globex", "enterprise", 800, 310, 6, -20, 25),
    Account("initech", "Initech", "mid-market", 120, 95, 2, 10, 60),
    Account("umbrella", "Umbrella", "mid-market", 150, 40, 4, -50, 45),
    Account("hooli", "Hooli", "smb", 25, 24, 0, 70, 330),
)
"""The fixed sample of accounts the server starts with."""
