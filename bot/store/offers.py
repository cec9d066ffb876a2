"""OfferStore: costly jobs waiting for their member's Start (SPEC §4a, /videoadmin confirm-above).

An offer holds a checked plan and reserves nothing. Start and Cancel move it out of 'open' with a compare-and-set,
so a Start clicked twice, or seen by two processes, starts one job; a Start after the offer's expiry starts none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.core.models import utc_now
from bot.store.driver import Database, from_db_time, to_db_time
from bot.store.jobs import Clock


class OfferOutcome(StrEnum):
    TAKEN = "taken"  # this click won: go ahead
    USED = "used"  # already started or cancelled
    EXPIRED = "expired"
    MISSING = "missing"
    NOT_YOURS = "not_yours"


@dataclass(frozen=True, slots=True)
class Offer:
    id: int
    guild_id: int
    user_id: int
    channel_id: int
    estimate_micros: int
    plan_json: str
    state: str
    created_at: datetime
    expires_at: datetime


class OfferStore:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def create(
        self,
        *,
        guild_id: int,
        user_id: int,
        channel_id: int,
        estimate_micros: int,
        plan_json: str,
        expires_at: datetime,
    ) -> int:
        now = to_db_time(self._clock())
        async with self._db.transaction() as conn:
            # Offers nobody answered are of no use once expired: drop them as new ones come (bounded table).
            await conn.execute("DELETE FROM offers WHERE state = 'open' AND expires_at < ?", (now,))
            rows = await conn.fetchall(
                "INSERT INTO offers (guild_id, user_id, channel_id, estimate_micros, plan_json, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (guild_id, user_id, channel_id, estimate_micros, plan_json, now, to_db_time(expires_at)),
            )
        return int(rows[0][0])

    async def take(self, offer_id: int, user_id: int, *, to: str = "started") -> tuple[OfferOutcome, Offer | None]:
        """Move an open, unexpired offer of this member to `to` ('started' or 'cancelled'), at most once."""
        now = to_db_time(self._clock())
        async with self._db.transaction() as conn:
            row = await conn.fetchone("SELECT * FROM offers WHERE id = ?", (offer_id,))
            if row is None:
                return OfferOutcome.MISSING, None
            offer = Offer(
                id=int(row["id"]),
                guild_id=int(row["guild_id"]),
                user_id=int(row["user_id"]),
                channel_id=int(row["channel_id"]),
                estimate_micros=int(row["estimate_micros"]),
                plan_json=str(row["plan_json"]),
                state=str(row["state"]),
                created_at=from_db_time(row["created_at"]),
                expires_at=from_db_time(row["expires_at"]),
            )
            if offer.user_id != user_id:
                return OfferOutcome.NOT_YOURS, offer
            if offer.state != "open":
                return OfferOutcome.USED, offer
            if to == "started" and row["expires_at"] <= now:
                return OfferOutcome.EXPIRED, offer
            moved = await conn.execute(
                "UPDATE offers SET state = ?, closed_at = ? WHERE id = ? AND state = 'open'",
                (to, now, offer_id),
            )
        return (OfferOutcome.TAKEN if moved == 1 else OfferOutcome.USED), offer
