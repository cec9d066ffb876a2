"""Confirm before costly jobs (SPEC §4a, /videoadmin confirm-above): offers that reserve nothing until Start.

A plan at or above the server's threshold becomes an offer: the plan is stored (images and all) and the member is
told the estimate and what they have left. Start takes the offer once (compare-and-set) within its window, then the
plan is checked again for the things that may have changed meanwhile (pause, channel rules) and reserved as usual.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.core.errors import Paused
from bot.core.models import ImageInput, Payer, SafetyMode, utc_now
from bot.core.plans import FrameRef, JobPlan, Requester
from bot.store.guilds import ChannelRule
from bot.store.interface import Guilds, Ledger
from bot.store.offers import OfferOutcome, OfferStore

#: How long a member has to press Start.
OFFER_WINDOW = timedelta(minutes=5)


class OfferClosed(Exception):
    """Start (or Cancel) on an offer that can't be taken; `outcome` says why (expired, used, ...)."""

    def __init__(self, outcome: OfferOutcome, window: timedelta) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome
        self.window = window


@dataclass(frozen=True, slots=True)
class OfferMade:
    offer_id: int
    estimate_micros: int
    left_micros: int | None  # the least left under the limits this job must fit; None: no limit applies
    expires_at: datetime


def plan_to_json(plan: JobPlan) -> str:
    data = asdict(plan)
    data["payer"] = plan.payer.value
    data["safety_mode"] = plan.safety_mode.value
    data["images"] = [
        [frame, {**asdict(img), "data": base64.b64encode(img.data).decode("ascii")}] for frame, img in plan.images
    ]
    return json.dumps(data, separators=(",", ":"))


def plan_from_json(text: str) -> JobPlan:
    d: dict[str, Any] = json.loads(text)
    who = d["who"]
    return JobPlan(
        who=Requester(**{**who, "role_ids": tuple(who["role_ids"])}),
        prompt=d["prompt"],
        resolution=d["resolution"],
        duration=int(d["duration"]),
        width=int(d["width"]),
        height=int(d["height"]),
        variations=int(d["variations"]),
        prompt_optimizer=bool(d["prompt_optimizer"]),
        payer=Payer(d["payer"]),
        estimate_micros=int(d["estimate_micros"]),
        safety_mode=SafetyMode(d["safety_mode"]),
        concurrency_cap=int(d["concurrency_cap"]),
        channel_rule=ChannelRule(**d["channel_rule"]),
        images=tuple(
            (frame, ImageInput(**{**img, "data": base64.b64decode(img["data"])})) for frame, img in d["images"]
        ),
        frames=tuple(FrameRef(**f) for f in d["frames"]),
        parent_job_id=d.get("parent_job_id"),
        dry_run=bool(d["dry_run"]),
        extra=dict(d.get("extra") or {}),
    )


class OfferDesk:
    def __init__(
        self,
        *,
        offers: OfferStore,
        guilds: Guilds,
        ledger: Ledger,
        clock: Callable[[], datetime] = utc_now,
        window: timedelta = OFFER_WINDOW,
    ) -> None:
        self._offers = offers
        self._guilds = guilds
        self._ledger = ledger
        self._clock = clock
        self.window = window

    async def needs_offer(self, plan: JobPlan) -> bool:
        """Whether the server asks its members to confirm a job of this estimate first."""
        if plan.payer is Payer.OPERATOR:
            return False
        threshold = (await self._guilds.get(plan.who.guild_id)).confirm_above_micros
        return threshold > 0 and plan.estimate_micros >= threshold

    async def left_for(self, plan: JobPlan) -> int | None:
        """What the payer has left under the tightest limit this job must fit (None: no limit applies)."""
        who = plan.who
        limits = await self._ledger.limits_for(
            payer=plan.payer,
            guild_id=who.guild_id,
            user_id=who.user_id,
            role_ids=who.role_ids,
            channel_id=who.budget_channel_id,
        )
        if not limits:
            return None
        standings = await self._ledger.standings(
            limits, guild_id=who.guild_id, now=self._clock(), dry_run=plan.dry_run, user_id=who.user_id
        )
        return min(s.left_micros for s in standings)

    async def offer(self, plan: JobPlan) -> OfferMade:
        """Store the plan as an offer (nothing reserved) and say what it costs and what is left."""
        expires = self._clock() + self.window
        offer_id = await self._offers.create(
            guild_id=plan.who.guild_id,
            user_id=plan.who.user_id,
            channel_id=plan.who.channel_id,
            estimate_micros=plan.estimate_micros,
            plan_json=plan_to_json(plan),
            expires_at=expires,
        )
        return OfferMade(offer_id, plan.estimate_micros, await self.left_for(plan), expires)

    async def start(self, offer_id: int, who: Requester) -> JobPlan:
        """Take the offer (once, within its window) and return its plan for the clicking member. Raises OfferClosed."""
        outcome, offer = await self._offers.take(offer_id, who.user_id, to="started")
        if outcome is not OfferOutcome.TAKEN or offer is None:
            raise OfferClosed(outcome, self.window)
        if (await self._guilds.get(offer.guild_id)).paused:  # paused since the offer was made
            raise Paused("guild_paused")
        plan = plan_from_json(offer.plan_json)
        return replace(
            plan, who=replace(who, channel_id=plan.who.channel_id, parent_channel_id=plan.who.parent_channel_id)
        )

    async def cancel(self, offer_id: int, who: Requester) -> None:
        outcome, _ = await self._offers.take(offer_id, who.user_id, to="cancelled")
        if outcome is not OfferOutcome.TAKEN:
            raise OfferClosed(outcome, self.window)
