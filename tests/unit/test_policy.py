"""Pure rules of bot/core/policy.py that hostile input reaches first."""

from __future__ import annotations

import pytest

from bot.core.errors import InputError
from bot.core.policy import MAX_CLIP_COST_MICROS, clean_prompt, cost_is_sane


@pytest.mark.parametrize(
    "prompt",
    [
        "\u200b\u200b\u200b",  # zero-width spaces
        "\u3164\u3164\u3164",  # Hangul filler
        "\u2800\u2800\u2800",  # Braille blank
        "\u200d\ufeff\u2060\u00ad \u115f\u1160\uffa0",  # joiners, BOM, word joiner, soft hyphen, more fillers
        " \u3000\u00a0\t\u200b ",  # every kind of space around a zero-width one
    ],
)
def test_a_prompt_with_no_visible_character_is_empty(prompt: str) -> None:
    with pytest.raises(InputError) as err:
        clean_prompt(prompt)
    assert err.value.code == "prompt_empty"


@pytest.mark.parametrize("prompt", ["a fox", "🦊🌨", "雪の狐", "a\u200bfox"])
def test_a_prompt_with_visible_characters_is_kept(prompt: str) -> None:
    assert clean_prompt(f"  {prompt} ") == prompt


@pytest.mark.parametrize("prompt", ["a fox\x00 in snow", "a fox\x1b[31m red", "a\x7ffox"])
def test_a_prompt_with_control_characters_is_refused(prompt: str) -> None:
    with pytest.raises(InputError) as err:
        clean_prompt(prompt)
    assert err.value.code == "prompt_control_characters"


def test_line_breaks_and_tabs_in_a_prompt_are_fine() -> None:
    assert clean_prompt("a fox\r\nin\tsnow") == "a fox\r\nin\tsnow"


def test_a_cost_is_sane_from_zero_up_to_the_cap_per_clip() -> None:
    assert cost_is_sane(0, 1) and cost_is_sane(280_000, 1) and cost_is_sane(MAX_CLIP_COST_MICROS * 2, 2)
    assert not cost_is_sane(-1, 1) and not cost_is_sane(MAX_CLIP_COST_MICROS + 1, 1)
