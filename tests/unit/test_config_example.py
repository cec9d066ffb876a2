"""config.example.toml documents every key with its default, so it cannot drift from the Settings model."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.settings import SECRET_ENV, ConfigError, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
SECRET_FIELDS = {f"{section}.{key}" for section, key in SECRET_ENV.values()}

# SPEC §7, verbatim: these keys keep these names and defaults.
SPEC_KEYS = """
dry_run = false
[discord]
api_base = ""
dev_guild_ids = []
[runware]
api_base = "https://api.runware.ai/v1"
model = "minimax:3@1"
output_format = "MP4"
output_quality = 95
ttl = 0
upload_endpoint = ""
request_timeout = 30
poll_interval = 10
max_wait = 1800
[webhook]
listen = "0.0.0.0:8080"
public_url = ""
[database]
path = "data/hailuo-bot.sqlite3"
[limits]
member_day_usd = 2.0
member_month_usd = 20.0
server_month_usd = 200.0
concurrent_per_member = 2
variations_cap = 4
[pricing]
"768p-6" = 0.28
"768p-10" = 0.56
"1080p-6" = 0.49
"""


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.upper().startswith("HAILUO_") or key in SECRET_ENV:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _sections(text: str) -> dict[str, str]:
    """The file's text split by [section] header ('' is the top level)."""
    out: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        m = re.match(r"^\[([A-Za-z_]+)\]", line)
        if m:
            current = m.group(1)
            out.setdefault(current, [])
        else:
            out[current].append(line)
    return {name: "\n".join(lines) for name, lines in out.items()}


def _uncommented(text: str) -> str:
    return re.sub(r"^# ([a-z_]+ = )", r"\1", text, flags=re.MULTILINE)


def test_example_loads_and_equals_builtin_defaults() -> None:
    settings, source = load_settings(EXAMPLE)
    assert source == str(EXAMPLE)
    assert settings == Settings()


def test_every_settings_field_is_documented() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    sections = _sections(text)
    missing: list[str] = []
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            assert name in data, f"section [{name}] missing"
            for key, sub in annotation.model_fields.items():
                if f"{name}.{key}" in SECRET_FIELDS:
                    continue
                toml_key = sub.alias or key
                if toml_key in data[name]:
                    continue
                # A key whose default is "unset" (None) cannot be written in TOML: it must be shown commented out.
                commented = re.search(rf"^# {toml_key} = ", sections[name], re.MULTILINE)
                if sub.default is None and commented:
                    continue
                missing.append(f"{name}.{toml_key}")
        elif name == "pricing":
            assert set(data["pricing"]) == set(Settings().pricing)
        else:
            if name not in data:
                missing.append(name)
    assert not missing, f"config.example.toml does not document: {', '.join(missing)}"
    for section, key in SECRET_ENV.values():
        if (section, key) == ("database", "url"):
            continue  # SPEC §7 shows it (empty) in the file; a password in it is better kept in DATABASE_URL
        assert key not in data.get(section, {}), f"secret {section}.{key} must not be in the file"


def test_every_key_has_a_one_line_comment() -> None:
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if re.match(r'^#? ?("?[\w-]+"?) = ', line):
            assert "  # " in line, f"no comment on: {line}"


def test_commented_out_keys_are_valid_when_enabled(tmp_path: Path) -> None:
    path = tmp_path / "enabled.toml"
    path.write_text(_uncommented(EXAMPLE.read_text(encoding="utf-8")), encoding="utf-8")
    settings, _ = load_settings(path)
    assert settings.limits.member_week_usd == 10.0
    assert settings.limits.server_day_usd == 50.0


def test_spec_keys_and_defaults_are_kept() -> None:
    example = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for key, value in tomllib.loads(SPEC_KEYS).items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                assert example[key][sub] == sub_value, f"{key}.{sub}"
        else:
            assert example[key] == value, key


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("poll_interval = 10 ", "poll_intervall = 10 ", "unknown key 'runware.poll_intervall'"),
        ("output_quality = 95 ", "output_quality = 200 ", "runware.output_quality: Input should be less than"),
        ('listen = "0.0.0.0:8080"', 'listen = "8080"', 'webhook.listen: must be "HOST:PORT"'),
        ('level = "INFO"', 'level = "LOUD"', "logging.level: must be DEBUG, INFO, WARNING or ERROR"),
        ("dry_run = false", 'dry_run = "maybe"', "dry_run: Input should be a valid boolean"),
        ("ttl = 0 ", "ttl = 30 ", "runware.ttl: must be 0 (not sent) or at least 60 seconds"),
        ('"1080p-6" = 0.49', '"4k-6" = 0.49', 'pricing: key "4k-6" must look like "768p-6"'),
        ("[images]", "[imagez]", "unknown key 'imagez'"),
        ("max_aspect = 2.5", "max_aspect = [2.5]", "images.max_aspect: Input should be a valid number"),
    ],
)
def test_wrong_key_or_value_is_one_line_naming_the_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "config.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message
