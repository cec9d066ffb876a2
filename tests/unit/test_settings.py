"""Settings precedence (defaults < TOML < environment), plain secret names, and one-line config errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.settings import SECRET_ENV, ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.upper().startswith("HAILUO_") or key in SECRET_ENV:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_no_config_file_runs_on_defaults_and_says_so() -> None:
    settings, source = load_settings()
    assert settings == Settings()
    assert source == "built-in defaults (no config.toml found)"
    assert settings.runware.poll_interval == 10
    assert settings.dry_run is False
    assert settings.database.path == Path("data/hailuo-bot.sqlite3")
    assert settings.pricing == {"768p-6": 0.28, "768p-10": 0.56, "1080p-6": 0.49}


def test_config_toml_in_working_directory_is_used(tmp_path: Path) -> None:
    write(tmp_path, "[runware]\npoll_interval = 7\n")
    settings, source = load_settings()
    assert source == "config.toml"
    assert settings.runware.poll_interval == 7


def test_precedence_defaults_then_toml_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        'dry_run = false\n[runware]\npoll_interval = 3\nmodel = "minimax:3@1"\nmax_wait = 600\n'
        "[discord]\ndev_guild_ids = [9]\n",
        "my.toml",
    )
    settings, _ = load_settings(path)
    assert (settings.runware.poll_interval, settings.runware.max_wait, settings.discord.dev_guild_ids) == (3, 600, [9])
    assert settings.runware.request_timeout == 30  # untouched keys keep their defaults

    monkeypatch.setenv("HAILUO_RUNWARE__POLL_INTERVAL", "5")
    monkeypatch.setenv("HAILUO_DRY_RUN", "true")
    monkeypatch.setenv("HAILUO_DISCORD__DEV_GUILD_IDS", "[1,2]")
    settings, source = load_settings(path)
    assert source == str(path)
    assert settings.runware.poll_interval == 5  # env beats the file
    assert settings.runware.max_wait == 600  # the file still beats the default for keys env leaves alone
    assert settings.dry_run is True
    assert settings.discord.dev_guild_ids == [1, 2]


def test_env_overrides_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAILUO_LIMITS__VARIATIONS_CAP", "8")
    monkeypatch.setenv("hailuo_logging__json", "1")  # names are case-insensitive; the TOML alias works too
    settings, _ = load_settings()
    assert settings.limits.variations_cap == 8
    assert settings.logging.json_lines is True


def test_plain_secret_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "discord-token-value")
    monkeypatch.setenv("RUNWARE_API_KEY", "runware-key-value")
    monkeypatch.setenv("WEBHOOK_SECRET", "webhook-secret-value")
    settings, _ = load_settings()
    assert settings.discord.token.get_secret_value() == "discord-token-value"
    assert settings.runware.api_key.get_secret_value() == "runware-key-value"
    assert settings.webhook.secret.get_secret_value() == "webhook-secret-value"
    assert "discord-token-value" not in repr(settings)  # SecretStr keeps them out of reprs


def test_plain_secret_merges_with_the_same_section_from_file_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[runware]\nmodel = "minimax:3@1"\npoll_interval = 4\n')
    monkeypatch.setenv("RUNWARE_API_KEY", "runware-key-value")
    monkeypatch.setenv("HAILUO_RUNWARE__MAX_WAIT", "900")
    settings, _ = load_settings(path)
    assert settings.runware.api_key.get_secret_value() == "runware-key-value"
    assert (settings.runware.poll_interval, settings.runware.max_wait) == (4, 900)


def test_no_secrets_means_empty_values() -> None:
    settings, _ = load_settings()
    assert settings.discord.token.get_secret_value() == ""
    assert settings.runware.api_key.get_secret_value() == ""
    assert settings.webhook.secret.get_secret_value() == ""


def test_missing_config_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config.toml"
    with pytest.raises(ConfigError) as err:
        load_settings(missing)
    assert str(err.value) == f"config file not found: {missing}"


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[runware\npoll_interval = 3\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "\n" not in message
    assert "line 1" in message


def test_unknown_key_and_bad_value_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'webhook\.port'"):
        load_settings(write(tmp_path, "[webhook]\nport = 80\n"))
    with pytest.raises(ConfigError, match=r"limits\.variations_cap: Input should be less than or equal to 20"):
        load_settings(write(tmp_path, "[limits]\nvariations_cap = 50\n"))
    with pytest.raises(ConfigError, match=r"webhook\.public_url: must start with https://"):
        load_settings(write(tmp_path, '[webhook]\npublic_url = "bot.example.com"\n'))


def test_bad_env_value_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[runware]\npoll_interval = 3\n")
    monkeypatch.setenv("HAILUO_RUNWARE__POLL_INTERVAL", "soon")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value).startswith("HAILUO_RUNWARE__POLL_INTERVAL: runware.poll_interval: ")


def test_env_list_that_is_not_json_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAILUO_DISCORD__DEV_GUILD_IDS", "[1, 2")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert str(err.value) == "HAILUO_DISCORD__DEV_GUILD_IDS: not valid JSON; a list is written like '[1, 2]'"


def test_pricing_merges_over_defaults(tmp_path: Path) -> None:
    settings, _ = load_settings(write(tmp_path, '[pricing]\n"768p-6" = 0.3\n'))
    assert settings.pricing == {"768p-6": 0.3, "768p-10": 0.56, "1080p-6": 0.49}


def test_public_url_needs_a_fixed_port(tmp_path: Path) -> None:
    text = '[webhook]\nlisten = "127.0.0.1:0"\npublic_url = "https://bot.example.com/"\n'
    with pytest.raises(ConfigError, match="needs a fixed port"):
        load_settings(write(tmp_path, text))
    settings, _ = load_settings(write(tmp_path, '[webhook]\npublic_url = "https://bot.example.com/"\n'))
    assert settings.webhook.public_url == "https://bot.example.com"
    assert (settings.webhook.host, settings.webhook.port) == ("0.0.0.0", 8080)


def test_overrides_apply_last(tmp_path: Path) -> None:
    settings, _ = load_settings(write(tmp_path, "dry_run = false\n"), overrides={"dry_run": True})
    assert settings.dry_run is True


def test_overrides_are_validated_like_the_file() -> None:
    settings, _ = load_settings(None, overrides={"dry_run": True, "runware": {"poll_interval": 2}})
    assert settings.dry_run is True and settings.runware.poll_interval == 2
    assert settings.runware.max_wait == Settings().runware.max_wait  # the rest of the section is kept
    with pytest.raises(ConfigError, match="dry_run"):
        load_settings(None, overrides={"dry_run": "maybe"})
    with pytest.raises(ConfigError, match="poll_interval"):
        load_settings(None, overrides={"runware": {"poll_interval": "often"}})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[limits]\nmember_day_usd = inf\n", "limits.member_day_usd"),
        ("[limits]\nserver_month_usd = nan\n", "limits.server_month_usd"),
        ("[limits]\nmember_month_usd = 1e13\n", "limits.member_month_usd"),
        ("[limits]\nmember_week_usd = -1\n", "limits.member_week_usd"),
        ('[pricing]\n"768p-6" = inf\n', "pricing"),
        ('[pricing]\n"768p-10" = nan\n', "pricing"),
        ('[pricing]\n"1080p-6" = 1e13\n', "pricing"),
        ("[runware]\nmax_wait = inf\n", "runware.max_wait"),
        ("[runware]\npoll_interval = nan\n", "runware.poll_interval"),
        ("[delivery]\ndownload_timeout = 1e13\n", "delivery.download_timeout"),
        ('[runware]\nmodel = "minimax:3@2"\n', "runware.model"),
        ('[runware]\nupload_endpoint = "ftp://files.example/{task_uuid}"\n', "runware.upload_endpoint"),
        ('[runware]\nupload_endpoint = "/srv/clips/{task_uuid}"\n', "runware.upload_endpoint"),
        ("[images]\nmin_side = 5000\nmax_side = 4096\n", "images"),
    ],
)
def test_values_that_are_not_finite_bounded_or_usable_are_refused_at_load_in_one_line(
    tmp_path: Path, text: str, key: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, text))
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'config.toml'}: {key}: "), message
    assert "\n" not in message


def test_the_environment_cannot_slip_in_an_infinite_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAILUO_LIMITS__MEMBER_DAY_USD", "Infinity")
    with pytest.raises(ConfigError, match=r"^HAILUO_LIMITS__MEMBER_DAY_USD: limits\.member_day_usd: .*finite"):
        load_settings()


@pytest.mark.parametrize(
    "secret",
    ["abc/def+ghi==", "with?query", "with#fragment", "per%2Fcent", "dot..dot", "has a space", "tab\there", "ünï"],
)
def test_a_webhook_secret_that_is_not_url_safe_is_one_line_without_the_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", secret)
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith("WEBHOOK_SECRET: webhook.secret: must be URL-safe"), message
    assert secret not in message and "\n" not in message


def test_a_url_safe_webhook_secret_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "Abc_123-xyz")
    settings, _ = load_settings()
    assert settings.webhook.secret.get_secret_value() == "Abc_123-xyz"


def test_clip_hosts_are_host_names(tmp_path: Path) -> None:
    settings, _ = load_settings(write(tmp_path, '[delivery]\nclip_hosts = ["CDN.Example.com.", "*.runware.ai"]\n'))
    assert settings.delivery.clip_hosts == ["cdn.example.com", "*.runware.ai"]
    with pytest.raises(ConfigError, match=r"delivery\.clip_hosts: .*is not a host name"):
        load_settings(write(tmp_path, '[delivery]\nclip_hosts = ["http://evil.example/"]\n'))
