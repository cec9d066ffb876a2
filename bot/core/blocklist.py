"""Phrases a server keeps out of prompts: a pure matcher, and a per-server cache of compiled matchers.

Matching is case-insensitive on word boundaries after Unicode NFKC folding (casefold too), so `Ｃａｔ` and `CAT`
match `cat` while `category` does not; a multi-word phrase matches across any run of whitespace, and invisible
format characters (zero-width spaces and the like) are dropped before matching so they cannot split a word.

The cache is keyed by a per-server version number that every change bumps in the same transaction (see
bot/store/blocklist.py). Each check reads that number (one primary-key lookup) and recompiles only when it moved,
so a change made by any process, SQLite or PostgreSQL, is seen by the next prompt everywhere: never stale.
"""

from __future__ import annotations

import re
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.errors import InputError

PHRASE_MIN, PHRASE_MAX = 1, 100
MAX_PHRASES = 200
CACHED_GUILDS = 1024  # servers whose compiled matcher is kept (least recently used dropped first)


class BlockedPrompt(InputError):
    """A prompt holds a phrase the server blocks. Carries the phrase as listed; bot/ui says it in words."""

    def __init__(self, phrase: str) -> None:
        super().__init__("blocked_phrase", phrase=phrase)
        self.phrase = phrase


class BlocklistFull(InputError):
    """A server already blocks the most phrases allowed."""

    def __init__(self, cap: int) -> None:
        super().__init__("blocklist_full", cap=cap)
        self.cap = cap


def fold(text: str) -> str:
    """NFKC, casefolded, NFKC again, without invisible format characters: the form both sides are compared in."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    if folded.isascii():  # the common case: no format characters to drop
        return folded
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")


def clean_phrase(text: str) -> str:
    """A phrase as it will be listed: trimmed, inner whitespace runs as one space, 1–100 characters."""
    phrase = " ".join(text.split())
    if not PHRASE_MIN <= len(phrase) <= PHRASE_MAX or not fold(phrase).strip():
        raise InputError("phrase_length", min=PHRASE_MIN, max=PHRASE_MAX)
    return phrase


def phrase_key(phrase: str) -> str:
    """The folded form two listings of the same phrase share (`CAT`, `Ｃａｔ` and `cat` are one entry)."""
    return " ".join(fold(phrase).split())


def _trie_pattern(keys: Iterable[str]) -> str:
    """One regex for many phrases, shared prefixes merged (a trie), so each position is tried once, not per phrase.

    Greedy: the longest phrase that ends on a word boundary wins ("red panda" before "red"). A space in a key
    matches any run of whitespace.
    """
    root: dict[str, Any] = {}
    for key in keys:
        node = root
        for ch in key:
            node = node.setdefault(ch, {})
        node[""] = {}  # a phrase ends here

    def build(node: dict[str, Any]) -> str:
        branches = [(r"\s+" if ch == " " else re.escape(ch)) + build(node[ch]) for ch in sorted(node) if ch]
        if not branches:
            return ""
        ends_here = "" in node
        if len(branches) == 1 and not ends_here:
            return branches[0]
        return "(?:" + "|".join(branches) + ")" + ("?" if ends_here else "")

    return build(root)


@dataclass(frozen=True, slots=True)
class Blocklist:
    """A compiled matcher for one server's phrases."""

    pattern: re.Pattern[str] | None
    by_key: dict[str, str]  # folded phrase -> the phrase as listed

    @classmethod
    def compile(cls, phrases: Iterable[str]) -> Blocklist:
        by_key: dict[str, str] = {}
        for phrase in phrases:
            key = phrase_key(phrase)
            if key:
                by_key.setdefault(key, phrase)
        if not by_key:
            return cls(None, {})
        pattern = re.compile(r"(?<!\w)(?:" + _trie_pattern(by_key) + r")(?!\w)")
        return cls(pattern, by_key)

    def find(self, prompt: str) -> str | None:
        """The listed phrase the prompt holds (as listed), or None."""
        if self.pattern is None:
            return None
        match = self.pattern.search(fold(prompt))
        if match is None:
            return None
        return self.by_key.get(" ".join(match.group().split()))

    def check(self, prompt: str) -> None:
        """Raise BlockedPrompt naming the first listed phrase the prompt holds."""
        phrase = self.find(prompt)
        if phrase is not None:
            raise BlockedPrompt(phrase)


EMPTY = Blocklist(None, {})


class BlocklistSource(Protocol):
    """What the guard reads: a cheap version number, and the phrases with the version they belong to."""

    async def version(self, guild_id: int) -> int: ...

    async def snapshot(self, guild_id: int) -> tuple[int, Sequence[str]]: ...


class BlocklistGuard:
    """Checks prompts against their server's blocklist, recompiling only when the server's version moved."""

    def __init__(self, source: BlocklistSource, *, cached_guilds: int = CACHED_GUILDS) -> None:
        self._source = source
        self._cache: OrderedDict[int, tuple[int, Blocklist]] = OrderedDict()
        self._max = cached_guilds
        self.compiled = 0  # how many times a matcher was built (tests and bench read it)

    async def matcher(self, guild_id: int) -> Blocklist:
        version = await self._source.version(guild_id)
        if version == 0:
            return EMPTY  # never had a phrase: nothing to read or compile
        cached = self._cache.get(guild_id)
        if cached is not None and cached[0] == version:
            self._cache.move_to_end(guild_id)
            return cached[1]
        version, phrases = await self._source.snapshot(guild_id)
        matcher = Blocklist.compile(phrases)
        self.compiled += 1
        self._cache[guild_id] = (version, matcher)
        self._cache.move_to_end(guild_id)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)
        return matcher

    async def check(self, guild_id: int, prompt: str) -> None:
        """Raise BlockedPrompt if the prompt holds a phrase this server blocks."""
        (await self.matcher(guild_id)).check(prompt)
