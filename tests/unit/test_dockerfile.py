"""The Dockerfile, read as instructions (no Docker engine needed): non-root, health-checked, no baked secrets."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET_WORDS = re.compile(r"TOKEN|KEY|SECRET|PASSWORD", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    op: str
    args: str


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions grouped by stage (each FROM starts one); comments dropped, continuations joined."""
    stages: list[list[Instruction]] = []
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if logical and line.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored by Docker
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        op, _, args = logical.partition(" ")
        logical = ""
        instruction = Instruction(op.upper(), args.strip())
        if instruction.op == "FROM":
            stages.append([])
        assert stages, "the first instruction must be FROM"
        stages[-1].append(instruction)
    return stages


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), f"not exec form: {args}"
    return value


def env_names(instruction: Instruction) -> list[str]:
    if instruction.op == "ARG":
        return [instruction.args.split("=", 1)[0]]
    words = shlex.split(instruction.args)
    if len(words) >= 2 and "=" not in words[0]:
        return [words[0]]  # legacy `ENV NAME value`
    return [w.split("=", 1)[0] for w in words]


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def ops(stage: list[Instruction], op: str) -> list[Instruction]:
    return [i for i in stage if i.op == op]


def test_two_stages_on_slim_python(stages: list[list[Instruction]]) -> None:
    assert len(stages) == 2
    for stage in stages:
        image = stage[0].args.split()[0]
        assert re.fullmatch(r"python:3\.1[1-9]-slim(@sha256:[0-9a-f]{64})?", image), image
    builder_name = stages[0][0].args.split()[-1]
    assert stages[0][0].args.lower().endswith(" as builder") or builder_name == "builder"
    assert any("--from=builder" in i.args for i in ops(stages[1], "COPY"))


def test_builder_installs_the_project(stages: list[list[Instruction]]) -> None:
    runs = " ".join(i.args for i in ops(stages[0], "RUN"))
    assert "pip wheel" in runs and "pip install" in runs
    copied = " ".join(i.args for i in ops(stages[0], "COPY"))
    for needed in ("pyproject.toml", "README.md", "bot", "cogs"):
        assert needed in copied


def test_runtime_is_non_root_with_data_volume(stages: list[list[Instruction]]) -> None:
    final = stages[-1]
    users = ops(final, "USER")
    assert users, "the final stage must switch to a non-root user"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    runs = " ".join(i.args for i in ops(final, "RUN"))
    assert re.search(rf"useradd .*--uid 10001 .*{user}", runs)
    assert f"chown {user}:{user} /app /data" in runs
    # USER comes after everything that needs root.
    last_run = max(i for i, ins in enumerate(final) if ins.op == "RUN")
    assert final.index(users[-1]) > last_run
    assert [exec_form(v.args) for v in ops(final, "VOLUME")] == [["/data"]]
    assert ops(final, "WORKDIR")[-1].args == "/app"
    env = " ".join(i.args for i in ops(final, "ENV"))
    assert "HAILUO_DATABASE__PATH=/data/hailuo-bot.sqlite3" in env


def test_runtime_exposes_and_checks_health(stages: list[list[Instruction]]) -> None:
    final = stages[-1]
    assert [i.args for i in ops(final, "EXPOSE")] == ["8080"]
    (health,) = ops(final, "HEALTHCHECK")
    options, _, command = health.args.partition("CMD ")
    assert "--timeout=" in options and "--interval=" in options
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request" in argv[2] and "http://127.0.0.1:8080/healthz" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")  # the one-liner is valid Python


def test_entrypoint_is_the_console_script(stages: list[list[Instruction]]) -> None:
    final = stages[-1]
    assert exec_form(ops(final, "ENTRYPOINT")[-1].args) == ["hailuo-bot"]
    assert exec_form(ops(final, "CMD")[-1].args) == []
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'hailuo-bot = "bot.cli:main"' in pyproject


def test_no_secret_baked_in(stages: list[list[Instruction]]) -> None:
    for stage in stages:
        for instruction in stage:
            if instruction.op in ("ENV", "ARG"):
                for name in env_names(instruction):
                    assert not SECRET_WORDS.search(name), f"{instruction.op} {name} looks like a secret"
            if instruction.op == "COPY":
                assert "config.toml" not in instruction.args.split()
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for plain in ("DISCORD_TOKEN=", "RUNWARE_API_KEY=", "WEBHOOK_SECRET="):
        assert plain not in text


def test_dockerignore_keeps_the_context_clean() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".git", ".venv", ".ci/venv", "data", "clips", "config.toml", ".pytest_cache", ".env"):
        assert needed in patterns, needed
    # What the builder copies must not be ignored.
    for kept in ("pyproject.toml", "README.md", "bot", "cogs"):
        assert kept not in patterns


def test_parser_handles_continuations_and_comments() -> None:
    text = (
        "# c\nFROM python:3.11-slim AS b\nRUN a \\\n  # inside\n  && b\n"
        "ENV A=1 \\\n    B=2\nFROM python:3.11-slim\nUSER x\n"
    )
    stages = parse_dockerfile(text)
    assert [[(i.op, i.args) for i in s] for s in stages] == [
        [("FROM", "python:3.11-slim AS b"), ("RUN", "a  && b"), ("ENV", "A=1  B=2")],
        [("FROM", "python:3.11-slim"), ("USER", "x")],
    ]
    assert env_names(stages[0][2]) == ["A", "B"]
