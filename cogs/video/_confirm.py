"""Confirm before costly jobs (/videoadmin confirm-above): the offer, and its Start and Cancel buttons."""

from __future__ import annotations

from typing import Any

import discord

from bot.core.offers import OfferClosed, OfferDesk
from bot.core.plans import JobPlan
from bot.ui.buttons import offer_view
from bot.ui.member_texts import offer_closed_text, offer_text
from bot.ui.texts import fit
from bot.ui.tree import send_ephemeral


async def offer_job(offers: OfferDesk, interaction: discord.Interaction[Any], plan: JobPlan) -> None:
    """Answer with the estimate, what is left, and Start / Cancel (ephemeral); nothing is reserved."""
    made = await offers.offer(plan)
    text = offer_text(
        made.estimate_micros,
        made.left_micros,
        made.expires_at,
        variations=plan.variations,
        size=f"{plan.resolution}, {plan.duration} s",
    )
    kwargs: dict[str, Any] = {
        "ephemeral": True,
        "view": offer_view(made.offer_id),
        "allowed_mentions": discord.AllowedMentions.none(),
    }
    if interaction.response.is_done():
        await interaction.followup.send(fit(text), **kwargs)
    else:
        await interaction.response.send_message(fit(text), **kwargs)


def offer_minutes(offers: OfferDesk) -> int:
    return max(1, round(offers.window.total_seconds() / 60))


async def answer_closed(offers: OfferDesk, interaction: discord.Interaction[Any], exc: OfferClosed) -> None:
    await send_ephemeral(interaction, offer_closed_text(exc.outcome.value, offer_minutes(offers)))
