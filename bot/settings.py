"""Settings: built-in defaults < TOML file < environment variables (SPEC §7)."""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

DEFAULT_CONFIG_PATH = Path("config.toml")

#: The three secrets have the plain names every bot guide uses; each lands on one nested key.
SECRET_ENV: dict[str, tuple[str, str]] = {
    "DISCORD_TOKEN": ("discord", "token"),
    "RUNWARE_API_KEY": ("runware", "api_key"),
    "WEBHOOK_SECRET": ("webhook", "secret"),
    "DATABASE_URL": ("database", "url"),
}


M = TypeVar("M", bound=BaseModel)
#: Most USD any limit or price may hold: far above any real budget, far below what integer micro-dollars can hold.
MAX_USD = 1_000_000.0
#: Longest wait any seconds-setting may ask for (30 days).
MAX_SECONDS = 30 * 86_400.0
#: The only model this bot speaks (its wire models are those of MiniMax Hailuo 02).
MODEL_ID = "minimax:3@1"
#: What a webhook secret may hold: it travels as one URL path segment, so only characters that need no encoding.
URL_SAFE_SECRET = re.compile(r"^[A-Za-z0-9_-]+$")
#: Where Runware serves generated clips from (RUNWARE.md §4: vm.runware.ai now, im.runware.ai in older answers).
DEFAULT_CLIP_HOSTS: tuple[str, ...] = ("vm.runware.ai", "im.runware.ai")
_HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class ConfigError(Exception):
    """A configuration problem, already phrased as one plain line naming the key or path."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


class DiscordSettings(_Section):
    token: SecretStr = SecretStr("")
    api_base: str = ""
    dev_guild_ids: list[int] = Field(default_factory=list)
    shard_count: int = Field(0, ge=0, le=10_000)  # 0: the count Discord recommends (GET /gateway/bot)
    shard_ids: list[int] = Field(default_factory=list)  # empty: every shard

    @field_validator("api_base")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        return v.rstrip("/")


class RunwareSettings(_Section):
    api_key: SecretStr = SecretStr("")
    api_base: str = "https://api.runware.ai/v1"
    model: str = MODEL_ID
    output_format: str = "MP4"
    output_quality: int = Field(95, ge=20, le=99)
    ttl: int = Field(0, ge=0, le=int(MAX_SECONDS))
    upload_endpoint: str = ""
    request_timeout: float = Field(30, gt=0, le=3600)
    poll_interval: float = Field(10, gt=0, le=86_400)
    poll_batch_size: int = Field(50, ge=1, le=500)
    poll_concurrency: int = Field(4, ge=1, le=32)  # getResponse batches in flight at once during a sweep
    max_wait: float = Field(1800, gt=0, le=MAX_SECONDS)
    dry_run_processing_seconds: float | None = Field(None, ge=0, le=86_400)  # None: the engine's built-in 4 s

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v != MODEL_ID:
            raise ValueError(f'must be "{MODEL_ID}" (MiniMax Hailuo 02), the only model this bot speaks')
        return v

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")) or any(c.isspace() for c in v):
            raise ValueError('must be an http(s) URL, e.g. "https://api.runware.ai/v1"')
        return v

    @field_validator("upload_endpoint")
    @classmethod
    def _upload_endpoint(cls, v: str) -> str:
        if v and (not v.startswith(("https://", "http://")) or any(c.isspace() for c in v) or len(v) > 2000):
            raise ValueError("must be empty or an http(s) URL (https://...), without spaces")
        return v

    @field_validator("output_format")
    @classmethod
    def _format(cls, v: str) -> str:
        up = v.upper()
        if up not in ("MP4", "WEBM", "MOV"):
            raise ValueError("must be one of MP4, WEBM, MOV")
        return up

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: int) -> int:
        if 0 < v < 60:
            raise ValueError("must be 0 (not sent) or at least 60 seconds")
        return v


class WebhookSettings(_Section):
    listen: str = "0.0.0.0:8080"
    public_url: str = ""
    secret: SecretStr = SecretStr("")
    max_body_bytes: int = Field(1_048_576, ge=1024, le=64 * 1024 * 1024)
    #: Seconds a client may take to send a request's headers, and then its body; slower connections are closed.
    read_timeout: float = Field(10, gt=0, le=300)
    max_connections: int = Field(256, ge=8, le=10_000)  # open connections at once; more wait to be accepted

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: SecretStr) -> SecretStr:
        value = v.get_secret_value()
        if value and not URL_SAFE_SECRET.match(value):
            raise ValueError(
                "must be URL-safe (only letters, digits, '-' and '_'), since it travels in the webhook URL; "
                "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return v

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError('must be "HOST:PORT", e.g. "0.0.0.0:8080"')
        return v

    @field_validator("public_url")
    @classmethod
    def _public(cls, v: str) -> str:
        v = v.rstrip("/")
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for local tests)")
        return v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class DatabaseSettings(_Section):
    path: Path = Path("data/hailuo-bot.sqlite3")
    url: SecretStr = SecretStr("")  # postgresql://…: PostgreSQL instead of the SQLite file (it may hold a password)
    lease_seconds: float = Field(0, ge=0)  # a claim on a job lasts this long unless renewed; 0: 3 × poll_interval


class LimitsSettings(_Section):
    member_day_usd: float = Field(2.0, ge=0, le=MAX_USD)
    member_week_usd: float | None = Field(None, ge=0, le=MAX_USD)
    member_month_usd: float = Field(20.0, ge=0, le=MAX_USD)
    server_day_usd: float | None = Field(None, ge=0, le=MAX_USD)
    server_week_usd: float | None = Field(None, ge=0, le=MAX_USD)
    server_month_usd: float = Field(200.0, ge=0, le=MAX_USD)
    concurrent_per_member: int = Field(2, ge=1, le=50)
    variations_cap: int = Field(4, ge=1, le=20)


class ImageSettings(_Section):
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    min_side: int = Field(300, ge=1, le=100_000)
    max_side: int = Field(4096, ge=64, le=100_000)
    max_aspect: float = Field(2.5, ge=1.0, le=100)

    @model_validator(mode="after")
    def _sides(self) -> ImageSettings:
        if self.min_side > self.max_side:
            raise ValueError(f"min_side ({self.min_side}) must not be above max_side ({self.max_side})")
        return self


class DeliverySettings(_Section):
    max_clip_bytes: int = Field(512 * 1024 * 1024, ge=1024, le=8 * 1024 * 1024 * 1024)
    download_timeout: float = Field(300, gt=0, le=3600)
    status_edit_interval: float = Field(10, ge=0, le=3600)
    download_workers: int = Field(4, ge=1, le=64)  # clip downloads and posts at once, apart from polling
    #: Hosts clip URLs may come from (and redirect to); "*.example.com" takes its subdomains. runware.api_base's host
    #: is always allowed too; loopback and private addresses only when runware.api_base is one.
    clip_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_CLIP_HOSTS))

    @field_validator("clip_hosts")
    @classmethod
    def _clip_hosts(cls, v: list[str]) -> list[str]:
        out = [host.strip().lower().rstrip(".") for host in v]
        for host in out:
            if not _HOST_PATTERN.match(host):
                raise ValueError(f'"{host}" is not a host name (e.g. "vm.runware.ai" or "*.example.com")')
        return out


class LoggingSettings(_Section):
    level: str = "INFO"
    json_lines: bool = Field(False, alias="json")
    file: str = ""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("level")
    @classmethod
    def _level(cls, v: str) -> str:
        up = v.upper()
        if up not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return up


DEFAULT_PRICING: dict[str, float] = {"768p-6": 0.28, "768p-10": 0.56, "1080p-6": 0.49}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HAILUO_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
        validate_default=True,
    )

    dry_run: bool = False
    discord: DiscordSettings = Field(default_factory=DiscordSettings)
    runware: RunwareSettings = Field(default_factory=RunwareSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    pricing: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_PRICING))
    images: ImageSettings = Field(default_factory=ImageSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @field_validator("pricing")
    @classmethod
    def _pricing(cls, v: dict[str, float]) -> dict[str, float]:
        merged = dict(DEFAULT_PRICING)
        for key, price in v.items():
            res, _, secs = key.partition("-")
            if res not in ("768p", "1080p") or not secs.isdigit():
                raise ValueError(f'key "{key}" must look like "768p-6"')
            if not math.isfinite(price) or not 0 <= price <= MAX_USD:
                raise ValueError(f'price for "{key}" must be a number from 0 to {MAX_USD:,.0f} (USD per clip)')
            merged[key] = price
        return merged

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.webhook.public_url and self.webhook.port == 0:
            raise ValueError("webhook.listen needs a fixed port when webhook.public_url is set")
        shards = self.discord.shard_ids
        if shards:
            count = self.discord.shard_count
            if not count:
                raise ValueError("discord.shard_ids needs discord.shard_count (the number of shards in all)")
            if any(not 0 <= i < count for i in shards) or len(set(shards)) != len(shards):
                raise ValueError(f"discord.shard_ids must be distinct numbers from 0 to {count - 1}")
            if not self.database.url.get_secret_value() and len(shards) != count:
                raise ValueError(
                    "discord.shard_ids picks some of the shards, but SQLite serves one process: run every shard "
                    "in this process (shard_ids = []) or set database.url to a PostgreSQL database"
                )
        return self

    @property
    def lease_seconds(self) -> float:
        """How long a process's claim on a job lasts unless renewed (SPEC §10)."""
        return self.database.lease_seconds or 3 * self.runware.poll_interval

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file (passed as init kwargs); plain secret names win over everything.
        return (_PlainSecretEnv(settings_cls), env_settings, init_settings)


class _PlainSecretEnv(PydanticBaseSettingsSource):
    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, dict[str, str]] = {}
        for env, (section, key) in SECRET_ENV.items():
            value = os.environ.get(env)
            if value:
                out.setdefault(section, {})[key] = value
        return out


def _format_error(err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "config"
    env_name = _env_name(first["loc"])
    if env_name is not None:
        origin = env_name  # the bad value came from the environment, not the file
    if first["type"] == "extra_forbidden":
        return f"{origin}: unknown key {loc!r}; see config.example.toml for the keys there are"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{origin}: {loc}: {msg}"


def _env_name(loc: tuple[int | str, ...]) -> str | None:
    """The environment variable that set the value at `loc`, if one did."""
    for env, target in SECRET_ENV.items():
        if tuple(loc[:2]) == target and os.environ.get(env):
            return env
    for depth in range(len(loc), 0, -1):
        name = "HAILUO_" + "__".join(str(p) for p in loc[:depth]).upper()
        for key in os.environ:
            if key.upper() == name:
                return key
    return None


def _bad_json_env() -> str:
    """Name the HAILUO_* variable whose list or table value does not parse (pydantic-settings does not say)."""
    for key, value in os.environ.items():
        if key.upper().startswith("HAILUO_") and value.lstrip()[:1] in ("[", "{"):
            try:
                json.loads(value)
            except ValueError:
                return key
    return "environment"


def _merged(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        old = out.get(key)
        out[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, Mapping) else value
    return out


def updated(model: M, update: Mapping[str, Any]) -> M:
    """`model` with `update` applied (nested sections merged) and validated again, unlike `model_copy(update=…)`."""
    return type(model).model_validate(_merged(model.model_dump(), update))


def load_settings(path: Path | None = None, *, overrides: dict[str, Any] | None = None) -> tuple[Settings, str]:
    """Load settings; return them with a one-line note of where they came from. Raises ConfigError."""
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        source = str(path)
    elif DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
        source = str(path)
    else:
        source = "built-in defaults (no config.toml found)"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        settings = Settings(**data)
        if overrides:
            settings = updated(settings, overrides)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc, str(path) if path else "environment")) from None
    except SettingsError:  # e.g. HAILUO_DISCORD__DEV_GUILD_IDS that is not valid JSON
        raise ConfigError(f"{_bad_json_env()}: not valid JSON; a list is written like '[1, 2]'") from None
    return settings, source
