"""Pure rules of bot/core/policy.py that hostile input reaches first."""

from __future__ import annotations

import pytest

from bot.core.errors import InputError
from bot.core.policy import clean_prompt


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
    with pytest.raises(InputError, match="The prompt is empty"):
        clean_prompt(prompt)


@pytest.mark.parametrize("prompt", ["a fox", "🦊🌨", "雪の狐", "a\u200bfox"])
def test_a_prompt_with_visible_characters_is_kept(prompt: str) -> None:
    assert clean_prompt(f"  {prompt} ") == prompt
