"""The pure rules behind SPEC §4a: the blocklist matcher and the prices that follow Runware."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.blocklist import BlockedPrompt, Blocklist, BlocklistGuard, clean_phrase, fold, phrase_key
from bot.core.errors import InputError
from bot.core.pricing import PriceBook, clip_price, drifted, median_micros


@pytest.mark.parametrize(
    ("prompt", "found"),
    [
        ("a cat", "cat"),
        ("A CAT!", "cat"),
        ("a Ｃａｔ sleeping", "cat"),  # full width
        ("ｃａｔ", "cat"),
        ("the cat's toy", "cat"),
        ("c\u200bat", "cat"),  # a zero-width space can't split the word
        ("category", None),
        ("concatenate", None),
        ("cats", None),
        ("ice  cream\ncone", "ice cream"),
        ("ICE\tCREAM", "ice cream"),
        ("icecream", None),
        ("STRASSE", "Straße"),  # casefold: ß is ss
        ("ｆｉ", None),
    ],
)
def test_the_matcher_folds_case_and_width_and_keeps_to_word_boundaries(prompt: str, found: str | None) -> None:
    matcher = Blocklist.compile(["cat", "ice cream", "Straße"])
    assert matcher.find(prompt) == found


def test_a_longer_phrase_is_named_before_a_shorter_one_it_holds() -> None:
    assert Blocklist.compile(["red", "red panda"]).find("a red panda") == "red panda"


def test_phrases_are_listed_trimmed_and_keyed_by_their_folded_form() -> None:
    assert clean_phrase("  red \t panda ") == "red panda"
    assert phrase_key("ＣＡＴ") == phrase_key("cat") == "cat"
    assert fold("Ⅻ") == "xii"
    for bad in ("", "   ", "x" * 101, "\u200b"):
        with pytest.raises(InputError):
            clean_phrase(bad)
    assert clean_phrase("x" * 100) == "x" * 100


@given(st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=8), st.text(max_size=30))
def test_a_listed_word_is_found_wherever_it_stands_alone(word: str, tail: str) -> None:
    key = phrase_key(word)
    if not key or " " in key or not all(ch.isalnum() for ch in key):
        return
    matcher = Blocklist.compile([word])
    assert matcher.find(f"{word} {tail}") == word
    assert matcher.find(f"x{key}x") is None


class Source:
    def __init__(self) -> None:
        self.ver, self.phrases, self.snapshots = 0, ["cat"], 0

    async def version(self, guild_id: int) -> int:
        return self.ver

    async def snapshot(self, guild_id: int) -> tuple[int, list[str]]:
        self.snapshots += 1
        return self.ver, list(self.phrases)


async def test_the_guard_compiles_once_per_version_and_sees_every_change() -> None:
    source = Source()
    guard = BlocklistGuard(source)  # type: ignore[arg-type]
    await guard.check(1, "a cat")  # version 0: never had a phrase, nothing read
    assert source.snapshots == 0
    source.ver = 1
    for _ in range(5):
        with pytest.raises(BlockedPrompt) as caught:
            await guard.check(1, "a cat")
    assert caught.value.phrase == "cat" and source.snapshots == 1 and guard.compiled == 1
    source.ver, source.phrases = 2, ["dog"]
    await guard.check(1, "a cat")
    with pytest.raises(BlockedPrompt):
        await guard.check(1, "a dog")
    assert guard.compiled == 2


def test_the_median_never_rounds_down_and_the_larger_price_wins() -> None:
    assert median_micros([]) is None
    assert median_micros([5]) == 5
    assert median_micros([1, 9, 5]) == 5
    assert median_micros([4, 1, 9, 5]) == 5  # the upper of the two middle values
    assert clip_price(280_000, None) == 280_000
    assert clip_price(280_000, 400_000) == 400_000
    assert clip_price(280_000, 200_000) == 280_000


def test_drift_is_more_than_five_percent_either_way() -> None:
    assert not drifted(1_000_000, 1_050_000) and not drifted(1_000_000, 950_000)
    assert drifted(1_000_000, 1_050_001) and drifted(1_000_000, 949_999)


async def test_the_price_book_reads_the_last_twenty_and_reports_each_drifting_size() -> None:
    asked: list[tuple[str, int, bool, int]] = []
    reported = {("768p", 6): [400_000] * 25, ("768p", 10): [560_000], ("1080p", 6): []}

    async def costs(resolution: str, duration: int, dry_run: bool, limit: int) -> list[int]:
        asked.append((resolution, duration, dry_run, limit))
        return reported[(resolution, duration)][:limit]

    book = PriceBook({"768p-6": 280_000, "768p-10": 560_000, "1080p-6": 490_000}, costs, dry_run=True)
    assert await book.estimate("768p", 6, 3) == 1_200_000
    assert await book.estimate("1080p", 6, 1) == 490_000
    assert asked[0] == ("768p", 6, True, 20)
    [drift] = await book.drifts()
    assert (drift.size, drift.configured_micros, drift.reported_micros, drift.samples) == (
        "768p-6",
        280_000,
        400_000,
        20,
    )
    assert round(drift.percent) == 43
    with pytest.raises(InputError):
        await book.estimate("1080p", 10, 1)
