"""Command line: run the bot (no subcommand), `doctor`, or `generate`. Only this module writes to stdout."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.core.errors import UserFacingError
from bot.core.policy import DURATIONS, RESOLUTIONS
from bot.settings import ConfigError, Settings, load_settings, updated

log = logging.getLogger("bot.cli")

EX_OK = 0
EX_FAILED = 1
EX_USAGE = 2
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_CONFIG = 78


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        type=Path,
        default=default,
        metavar="PATH",
        help="TOML config file (default: config.toml if present)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="use the built-in Runware simulator: nothing is billed, no key needed",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hailuo-bot",
        description="Discord bot for cinematic video clips with MiniMax Hailuo 02 on Runware. "
        "With no command it runs the bot.",
    )
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="{doctor,generate,copy-db}")
    doctor = sub.add_parser("doctor", help="check the config, database, Discord token, Runware key and webhook")
    _common(doctor, top=False)
    gen = sub.add_parser("generate", help="run one job from the command line and save the clips")
    _common(gen, top=False)
    gen.add_argument("prompt", help="what the clip should show (2–2000 characters)")
    gen.add_argument("--first-frame", type=Path, metavar="PATH", help="image for the first frame (PNG/JPEG/WEBP)")
    gen.add_argument("--last-frame", type=Path, metavar="PATH", help="image for the last frame (PNG/JPEG/WEBP)")
    gen.add_argument("--resolution", choices=RESOLUTIONS, help="768p (default) or 1080p")
    gen.add_argument("--duration", type=int, choices=DURATIONS, help="seconds: 6 (default) or 10 (768p only)")
    gen.add_argument("--variations", type=int, metavar="N", help="how many clips (default 1)")
    gen.add_argument("--prompt-optimizer", action="store_true", help="let MiniMax rewrite the prompt")
    gen.add_argument("--out", type=Path, default=Path("clips"), metavar="DIR", help="output folder (default clips/)")
    copy = sub.add_parser("copy-db", help="copy the SQLite database into an empty PostgreSQL database")
    _common(copy, top=False)
    copy.add_argument("--to", required=True, metavar="URL", help="postgresql://user:password@host:5432/database")
    return parser


def _fail(message: str, code: int) -> int:
    from bot.logs import redact  # errors can quote a URL or a value; secrets are masked here as in the logs

    print(f"hailuo-bot: {redact(message)}", file=sys.stderr)
    return code


def _settings(args: argparse.Namespace) -> tuple[Settings, str]:
    if args.config is not None and not args.config.is_file():
        raise ConfigError(
            f"config file not found: {args.config} (copy config.example.toml there, or leave out --config "
            "to use ./config.toml or the built-in defaults)"
        )
    overrides = {"dry_run": True} if args.dry_run else None
    return load_settings(args.config, overrides=overrides)


def missing_secret(settings: Settings, *, need_discord: bool) -> str | None:
    """The one-line message for a missing token or key, or None."""
    if need_discord and not settings.discord.token.get_secret_value():
        return (
            "DISCORD_TOKEN is not set: put your bot token in the environment (export DISCORD_TOKEN=..., or "
            "docker run -e DISCORD_TOKEN); it is in the Discord Developer Portal → your application → Bot → Reset Token"
        )
    if not settings.dry_run and not settings.runware.api_key.get_secret_value():
        return (
            "RUNWARE_API_KEY is not set: put your key in the environment (export RUNWARE_API_KEY=..., or "
            "docker run -e RUNWARE_API_KEY); make one at runware.ai → API Keys. Or add --dry-run to try the bot "
            "on the built-in simulator"
        )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings, source = _settings(args)
    except ConfigError as exc:
        return _fail(str(exc), EX_CONFIG)
    command = args.command
    if command not in ("doctor", "copy-db"):  # doctor reports missing secrets among its findings
        problem = missing_secret(settings, need_discord=command is None)
        if problem:
            return _fail(problem, EX_CONFIG)
    from bot.logs import setup_logging

    secrets = [
        settings.discord.token.get_secret_value(),
        settings.runware.api_key.get_secret_value(),
        settings.webhook.secret.get_secret_value(),
        *_url_passwords(settings.database.url.get_secret_value(), getattr(args, "to", "") or ""),
    ]
    log_cfg = settings.logging
    if command and log_cfg.level == "INFO":
        # doctor's findings and generate's lines are the output: only real errors are logged besides
        log_cfg = updated(log_cfg, {"level": "ERROR"})
    # The bot logs to stdout; doctor and generate keep stdout for their own output and log to stderr.
    setup_logging(log_cfg, secrets=[s for s in secrets if s], stream=sys.stderr if command else None)
    log.info("configuration: %s", source)
    log.debug("settings: %s", settings.model_dump(mode="json"))  # secrets print as ********** (SecretStr)
    if command == "doctor":
        from bot.doctor import run_doctor

        code, lines = asyncio.run(run_doctor(settings, source))
        for line in lines:
            print(line)
        return code
    if command == "generate":
        return _generate(settings, args)
    if command == "copy-db":
        return _copy_db(settings, args.to)
    from bot.app import run_bot

    try:
        return run_bot(settings)
    except UserFacingError as exc:
        from bot.ui.texts_errors import error_text

        return _fail(error_text(exc), EX_UNAVAILABLE)


def _url_passwords(*urls: str) -> list[str]:
    from urllib.parse import urlsplit

    found = []
    for url in urls:
        with contextlib.suppress(ValueError):
            password = urlsplit(url).password
            if password:
                found.append(password)
    return found


def _copy_db(settings: Settings, url: str) -> int:
    from bot.copydb import CopyFailed, copy_db

    try:
        asyncio.run(copy_db(settings, url, print))
    except CopyFailed as exc:
        return _fail(str(exc), EX_DATAERR)
    return 0


class StdConsole:
    """generate's output: results to stdout, progress and notes to stderr."""

    @property
    def interactive(self) -> bool:
        return sys.stderr.isatty()

    def out(self, line: str) -> None:
        print(line, flush=True)

    def err(self, line: str, *, end: str = "\n") -> None:
        print(line, end=end, file=sys.stderr, flush=True)


def _generate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.generate import GenerateArgs, run_generate

    gen = GenerateArgs(
        prompt=args.prompt,
        first_frame=args.first_frame,
        last_frame=args.last_frame,
        resolution=args.resolution,
        duration=args.duration,
        variations=args.variations,
        prompt_optimizer=args.prompt_optimizer,
        out=args.out,
    )
    try:
        return asyncio.run(run_generate(settings, gen, StdConsole()))
    except UserFacingError as exc:
        from bot.core.errors import InputError
        from bot.ui.texts_errors import error_text

        return _fail(error_text(exc), EX_DATAERR if isinstance(exc, InputError) else EX_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted; the job stays recorded and the bot will pick it up", EX_FAILED)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
