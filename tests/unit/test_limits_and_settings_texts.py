"""Moderator option parsing and the texts /limits and /videoadmin answer with (pure parts, no Discord)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from bot.core.errors import InputError
from bot.core.models import Period, SafetyMode, Scope
from bot.core.policy import Limit
from bot.store.guilds import GuildConfig
from bot.store.ledger import SpendLine, SpendReport
from bot.ui.texts import limit_name, report_text, settings_changed_text
from cogs.limits._desk import parse_amount
from tests.helpers import raises_saying

GUILD = 1000


@pytest.mark.parametrize(
    ("amount", "micros"),
    [(0, 0), (0.0, 0), (2.5, 2_500_000), (0.1, 100_000), (0.56, 560_000), ("19.99", 19_990_000), (1e-6, 1)],
)
def test_amounts_are_exact_micro_dollars(amount: float | str, micros: int) -> None:
    assert parse_amount(amount) == micros


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        (-0.01, "can't be negative"),
        (float("nan"), "must be a number"),
        (float("inf"), "must be a number"),
        (2_000_000, "smaller limit"),
        (1e-9, "smallest limit above zero"),
        ("five", "not an amount"),
    ],
)
def test_bad_amounts_are_refused_in_plain_words(amount: float | str, says: str) -> None:
    with raises_saying(InputError, says):
        parse_amount(amount)


def test_limit_names_say_whose_limit_it_is() -> None:
    assert limit_name(Limit(Scope.MEMBER, 7, Period.DAY, 1), GUILD) == "<@7>'s daily limit"
    assert limit_name(Limit(Scope.ROLE, 8, Period.WEEK, 1), GUILD) == "the weekly limit of each member with <@&8>"
    assert limit_name(Limit(Scope.ROLE, GUILD, Period.DAY, 1), GUILD) == "the daily limit of each member with @everyone"
    assert limit_name(Limit(Scope.CHANNEL, 9, Period.MONTH, 1), GUILD) == "<#9>'s monthly limit"
    server = Limit(Scope.SERVER, GUILD, Period.MONTH, 1, is_default=True)
    assert limit_name(server, GUILD) == "the server's monthly limit (config default)"


def test_report_text_shows_totals_top_lines_pools_and_the_operator_apart() -> None:
    report = SpendReport(
        guild_id=GUILD,
        period=Period.WEEK,
        window_start=datetime(2025, 3, 3, tzinfo=UTC),
        window_end=datetime(2025, 3, 10, tzinfo=UTC),
        dry_run=False,
        settled_micros=840_000,
        reserved_micros=280_000,
        jobs=4,
        top_members=(SpendLine(7, 560_000, 0, 2),),
        top_channels=(SpendLine(9, 560_000, 0, 2),),
        pools=(SpendLine(11, 280_000, 280_000, 2),),
        daily=((date(2025, 3, 3), 1_120_000),),
        operator=SpendLine(0, 490_000, 0, 1),
    )
    text = report_text(report)
    assert text.splitlines()[:2] == [
        "📊 **Video spend this week** (2025-03-03 to 2025-03-09, UTC)",
        "**Total: $1.12** — $0.84 settled + $0.28 reserved · 4 jobs",
    ]
    assert "1. <@7> $0.56 · 2 jobs" in text
    assert "1. <#9> $0.56 · 2 jobs" in text
    assert "1. <#11> $0.56 ($0.28 reserved) · 2 jobs" in text
    assert "Operator jobs (`hailuo-bot generate`), not in the totals: $0.49 · 1 job" in text
    assert text.endswith("Spend per day is in the attached chart.")


def test_settings_changes_list_only_what_moved_then_the_whole_state() -> None:
    old = GuildConfig(GUILD, "768p", 6, 4, False, SafetyMode.NONE, 2, None, False)
    new = replace(old, safety_mode=SafetyMode.FULL, paused=True)
    text = settings_changed_text(old, new, "A note.")
    assert text.startswith(
        "✅ Safety checks: none → full; New jobs: running → paused.\nA note.\n\nServer settings now:"
    )
    assert "• Safety checks of generated clips: **full**" in text and "• New jobs: **paused**" in text
    assert settings_changed_text(old, old).startswith("Nothing changed: that is already the setting.")


def test_every_kind_of_audit_row_reads_as_what_changed_old_to_new() -> None:
    from datetime import UTC, datetime

    from bot.store.guilds import AuditRow
    from bot.ui.moderation import audit_change, audit_line

    def row(action: str, target: str, old: str | None, new: str | None) -> AuditRow:
        return AuditRow(1, 1000, 42, action, target, old, new, datetime(2025, 3, 1, 12, tzinfo=UTC))

    assert audit_change(row("setting", "paused", None, "1")) == "New jobs: the default → paused"
    assert audit_change(row("setting", "prompt_optimizer", "0", "1")) == "Prompt optimizer: off → on"
    assert audit_change(row("setting", "default_duration", "6", "10")) == "Default length: 6 s → 10 s"
    assert audit_change(row("setting", "moderator_role_id", "7", None)) == "Moderator role: <@&7> → none"
    assert audit_change(row("setting", "confirm_above_micros", None, "500000")) == "Confirm above: the default → $0.50"
    assert audit_change(row("channel", "55:threads", "0", "1")) == "<#55> thread per job: off → on"
    assert audit_change(row("limit.set", "role:1000:week", None, "3000000")) == (
        "The weekly limit of each member with @everyone set: none → $3.00"
    )
    assert audit_change(row("limit.clear", "server:1000:month", "50000000", None)) == (
        "The server's monthly limit cleared: $50.00 → none"
    )
    assert audit_change(row("blocklist.add", "cat", None, "*cat*")) == "Blocked phrase added: “\\*cat\\*”"
    assert audit_change(row("blocklist.remove", "cat", "cat", None)) == "Blocked phrase removed: “cat”"
    assert audit_change(row("pool.rename", "x_y", "a", "b")) == "Pool rename x y: a → b"  # a kind added later
    assert audit_line(row("setting", "paused", "1", "0")) == "• <t:1740830400:f> · <@42> · New jobs: paused → running"
