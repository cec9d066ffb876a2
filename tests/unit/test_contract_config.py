"""SPEC §7 as an operator reads it: the TOML block verbatim, every key by environment name, the secrets' plain
names, and the command line of §7b."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.cli import build_parser
from bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"
#: Where SPEC.md is: beside the checkout in CI (../shared), or the lead's shared folder.
SPEC_PLACES = (ROOT.parent / "shared" / "SPEC.md", Path("/work/shared/SPEC.md"))

# SPEC §7's block, copied verbatim (comments included).
SPEC_BLOCK = """\
dry_run = false                # true: the built-in Runware simulator, nothing billed, posts say DRY RUN

[discord]
api_base = ""                  # REST base, e.g. "http://127.0.0.1:8000/api/v10"; empty = Discord's (section 7a)
dev_guild_ids = []             # sync commands to these servers at start-up (instant); else globally
shard_count = 0                # 0 = the count Discord recommends (GET /gateway/bot); else this many shards in all
shard_ids = []                 # the shards this process runs; empty = all of them (section 10)

[runware]
api_base = "https://api.runware.ai/v1"
model = "minimax:3@1"
output_format = "MP4"
output_quality = 95
ttl = 0                        # seconds; 0 = not sent, else at least 60
upload_endpoint = ""           # optional URL template for Runware's PUT of each clip; {task_uuid} filled in
request_timeout = 30           # seconds per HTTP request
poll_interval = 10             # seconds between getResponse sweeps
max_wait = 1800                # seconds before an unfinished job is marked expired

[webhook]
listen = "0.0.0.0:8080"        # where the webhook receiver binds
public_url = ""                # how Runware reaches it; empty = polling only

[database]
path = "data/hailuo-bot.sqlite3"   # SQLite (one process)
url = ""                       # postgresql://user@host:5432/db: PostgreSQL instead (section 10); DATABASE_URL also works

[limits]                       # defaults; moderators override per server
member_day_usd = 2.0
member_month_usd = 20.0
server_month_usd = 200.0
concurrent_per_member = 2
variations_cap = 4

[pricing]                      # estimate per clip, USD, "<resolution>-<seconds>"
"768p-6" = 0.28                # placeholder figures: set them from your Runware price list
"768p-10" = 0.56
"1080p-6" = 0.49
"""

#: Every key of the block with a value other than its default, and how the loaded Settings show it.
NON_DEFAULT: list[tuple[str, str, str, Any]] = [
    # (section or "", key, environment value, expected attribute value)
    ("", "dry_run", "true", True),
    ("discord", "api_base", "http://127.0.0.1:8000/api/v10", "http://127.0.0.1:8000/api/v10"),
    ("discord", "dev_guild_ids", "[123456789012345678]", [123456789012345678]),
    ("discord", "shard_count", "4", 4),
    ("discord", "shard_ids", "[0, 1]", [0, 1]),
    ("runware", "api_base", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"),
    ("runware", "model", "minimax:3@1", "minimax:3@1"),  # the only model there is; any other is refused at load
    ("runware", "output_format", "WEBM", "WEBM"),
    ("runware", "output_quality", "80", 80),
    ("runware", "ttl", "3600", 3600),
    ("runware", "upload_endpoint", "https://up.example/{task_uuid}", "https://up.example/{task_uuid}"),
    ("runware", "request_timeout", "12", 12),
    ("runware", "poll_interval", "5", 5),
    ("runware", "max_wait", "900", 900),
    ("webhook", "listen", "127.0.0.1:9090", "127.0.0.1:9090"),
    ("webhook", "public_url", "https://bot.example", "https://bot.example"),
    ("database", "path", "/data/x.sqlite3", Path("/data/x.sqlite3")),
    ("limits", "member_day_usd", "3.5", 3.5),
    ("limits", "member_month_usd", "30", 30.0),
    ("limits", "server_month_usd", "500", 500.0),
    ("limits", "concurrent_per_member", "3", 3),
    ("limits", "variations_cap", "10", 10),
]


def spec_block_in(text: str) -> str:
    """The ```toml block of SPEC §7."""
    section = text.split("## 7. Configuration", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match is not None, "SPEC §7 has a ```toml block"
    return match.group(1)


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no config.toml here (tests/conftest.py already cleared HAILUO_* and secrets)


def test_the_block_copied_here_is_specs_own() -> None:
    spec = next((p for p in SPEC_PLACES if p.is_file()), None)
    if spec is None:
        pytest.skip("SPEC.md is not beside this checkout")
    assert spec_block_in(spec.read_text(encoding="utf-8")) == SPEC_BLOCK


def test_a_config_file_with_exactly_specs_block_loads_and_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC_BLOCK, encoding="utf-8")
    settings, source = load_settings(path)
    assert source == str(path)
    assert settings == Settings(), "every value in SPEC's block is the built-in default"
    # And the same block from the working directory's config.toml, found without --config.
    (tmp_path / "config.toml").write_text(SPEC_BLOCK, encoding="utf-8")
    settings, source = load_settings()
    assert source == "config.toml" and settings == Settings()


def test_the_example_config_has_every_key_of_specs_block_with_its_value() -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for key, value in tomllib.loads(SPEC_BLOCK).items():
        if isinstance(value, dict):
            assert key in example, f"[{key}]"
            for sub, sub_value in value.items():
                assert example[key].get(sub) == sub_value, f"{key}.{sub}"
        else:
            assert example[key] == value, key


def test_a_file_may_leave_out_any_key_or_section(tmp_path: Path) -> None:
    for section, keys in tomllib.loads(SPEC_BLOCK).items():
        if not isinstance(keys, dict):
            continue
        path = tmp_path / f"without-{section}.toml"
        path.write_text("\n".join(line for line in _without(SPEC_BLOCK, section)) + "\n", encoding="utf-8")
        settings, _ = load_settings(path)
        assert settings == Settings(), section


def _without(text: str, section: str) -> list[str]:
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        header = re.match(r"^\[([a-z_]+)\]", line)
        if header:
            skipping = header.group(1) == section
        if not skipping:
            out.append(line)
    return out


def _attr(settings: Settings, section: str, key: str) -> Any:
    return getattr(settings, key) if not section else getattr(getattr(settings, section), key)


@pytest.mark.parametrize(("section", "key", "env_value", "expected"), NON_DEFAULT, ids=lambda v: str(v))
def test_every_spec_key_can_be_set_by_environment_and_wins_over_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, section: str, key: str, env_value: str, expected: Any
) -> None:
    name = f"HAILUO_{section.upper()}__{key.upper()}" if section else f"HAILUO_{key.upper()}"
    path = tmp_path / "spec.toml"
    path.write_text(SPEC_BLOCK, encoding="utf-8")  # the file says the default...
    monkeypatch.setenv(name, env_value)  # ...the environment wins
    if section == "webhook" and key == "public_url":
        monkeypatch.setenv("HAILUO_WEBHOOK__LISTEN", "0.0.0.0:8080")
    if section == "discord" and key == "shard_ids":  # picking shards needs their number in all
        monkeypatch.setenv("HAILUO_DISCORD__SHARD_COUNT", "2")
    settings, _ = load_settings(path)
    assert _attr(settings, section, key) == expected, name


def test_pricing_keys_keep_their_names() -> None:
    assert Settings().pricing == {"768p-6": 0.28, "768p-10": 0.56, "1080p-6": 0.49}


def test_the_three_secrets_have_plain_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "discord-token-value")
    monkeypatch.setenv("RUNWARE_API_KEY", "runware-key-value")
    monkeypatch.setenv("WEBHOOK_SECRET", "webhook-secret-value")
    settings, _ = load_settings()
    assert settings.discord.token.get_secret_value() == "discord-token-value"
    assert settings.runware.api_key.get_secret_value() == "runware-key-value"
    assert settings.webhook.secret.get_secret_value() == "webhook-secret-value"
    assert "discord-token-value" not in repr(settings) and "runware-key-value" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"command": None, "config": None, "dry_run": False}),
        (["--config", "prod.toml", "--dry-run"], {"command": None, "config": Path("prod.toml"), "dry_run": True}),
        (["doctor"], {"command": "doctor", "config": None, "dry_run": False}),
        (["doctor", "--config", "c.toml"], {"command": "doctor", "config": Path("c.toml")}),
        (["generate", "a paper boat"], {"command": "generate", "prompt": "a paper boat", "out": Path("clips")}),
        (
            [
                "generate",
                "a paper boat",
                "--first-frame",
                "a.png",
                "--last-frame",
                "b.png",
                "--resolution",
                "1080p",
                "--duration",
                "6",
                "--variations",
                "3",
                "--prompt-optimizer",
                "--out",
                "out",
                "--config",
                "c.toml",
                "--dry-run",
            ],
            {
                "command": "generate",
                "prompt": "a paper boat",
                "first_frame": Path("a.png"),
                "last_frame": Path("b.png"),
                "resolution": "1080p",
                "duration": 6,
                "variations": 3,
                "prompt_optimizer": True,
                "out": Path("out"),
                "config": Path("c.toml"),
                "dry_run": True,
            },
        ),
        (["--dry-run", "generate", "x y"], {"command": "generate", "dry_run": True, "prompt": "x y"}),
    ],
)
def test_the_command_line_of_spec_7b_parses(argv: list[str], expected: dict[str, Any]) -> None:
    args = vars(build_parser().parse_args(argv))
    for key, value in expected.items():
        assert args[key] == value, (argv, key)


def test_the_console_script_is_hailuo_bot() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"] == {"hailuo-bot": "bot.cli:main"}
    assert (ROOT / "bot" / "__main__.py").is_file(), "python -m bot"
