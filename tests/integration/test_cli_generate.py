"""`hailuo-bot generate` as an operator runs it: a child process, real files, a real SQLite file, exit codes.

The child is `python -m bot generate ...` (the same entry point as the `hailuo-bot` script). Runs that need
Runware use the simulator started here, in the test process, so what reached it can be checked.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from bot.simulator.server import RunwareSimulator
from tests.e2e.crash_runner import SIM_KEY, child_env, read_rows

CLIP_COST_MICROS = 280_000
#: What generate prints on stdout for each clip: "<path>  seed=<n>  cost=$0.28[ (simulated)]".
CLIP_LINE = re.compile(r"^(?P<path>\S+\.mp4)  seed=(?P<seed>\d+)  cost=(?P<cost>\$\d+\.\d\d)(?P<sim> \(simulated\))?$")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def clip_lines(self) -> list[re.Match[str]]:
        return [m for line in self.stdout.splitlines() if (m := CLIP_LINE.match(line))]

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


async def generate(cwd: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> Run:
    """Run `python -m bot generate ARGS` in `cwd` with a clean environment plus `env`."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "generate",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(env),
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def assert_one_line_error(run: Run, *expected: str) -> None:
    assert run.code != 0, str(run)
    assert "Traceback" not in run.stdout + run.stderr, str(run)
    [line] = run.error_lines
    assert line.startswith("hailuo-bot: "), str(run)
    for text in expected:
        assert text in line, str(run)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "generate.sqlite3"


@pytest.fixture
def frame(tmp_path: Path) -> Path:
    """A real 640×360 PNG made with Pillow."""
    path = tmp_path / "x.png"
    image = Image.new("RGB", (640, 360))
    for x in range(0, 640, 40):
        image.paste((20 + x // 3, 90, 160), (x, 0, x + 20, 360))
    image.save(path, format="PNG")
    return path


@pytest.fixture
async def runware() -> AsyncIterator[RunwareSimulator]:
    """An external Runware for the child process: finishes each task as soon as it is asked about it."""
    async with RunwareSimulator(api_key=SIM_KEY) as sim:
        yield sim


def fast(db: Path, **extra: str) -> dict[str, str]:
    """Environment for a quick run: its own database, polling every 0.2 s, a 0.2 s dry-run simulator."""
    return {
        "HAILUO_DATABASE__PATH": str(db),
        "HAILUO_RUNWARE__POLL_INTERVAL": "0.2",
        "HAILUO_RUNWARE__DRY_RUN_PROCESSING_SECONDS": "0.2",
        **extra,
    }


def against(sim: RunwareSimulator, db: Path) -> dict[str, str]:
    return fast(db, HAILUO_RUNWARE__API_BASE=sim.base_url, RUNWARE_API_KEY=SIM_KEY)


def assert_clips(run: Run, cwd: Path, out: Path, n: int, *, simulated: bool) -> list[int]:
    """n clip lines on stdout, each naming a real MP4 file in `out`; returns the seeds."""
    assert run.code == 0, str(run)
    lines = run.clip_lines
    assert len(lines) == n, str(run)
    seeds: list[int] = []
    for m in lines:
        path = cwd / m["path"]
        assert path.parent == out, str(run)
        assert path.read_bytes()[4:8] == b"ftyp", f"{path} is not an MP4"
        assert m["cost"] == "$0.28"
        assert bool(m["sim"]) is simulated
        seeds.append(int(m["seed"]))
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(m["path"]).name for m in lines)
    return seeds


async def test_dry_run_writes_mp4_files_and_records_an_operator_job(tmp_path: Path, db: Path, frame: Path) -> None:
    out = tmp_path / "clips-out"
    run = await generate(
        tmp_path, "--dry-run", "a prompt", "--first-frame", str(frame), "--out", str(out), env=fast(db)
    )
    assert_clips(run, tmp_path, out, 1, simulated=True)
    [job] = read_rows(db, "SELECT * FROM jobs")
    assert (job["payer"], job["state"], job["dry_run"], job["frame_count"]) == ("operator", "succeeded", 1, 1)
    assert job["cost_micros"] == CLIP_COST_MICROS
    [result] = read_rows(db, "SELECT * FROM results WHERE job_id = ?", (job["id"],))
    assert result["state"] == "delivered"
    [money] = read_rows(db, "SELECT * FROM ledger WHERE job_id = ?", (job["id"],))
    assert (money["payer"], money["status"], money["charged_micros"]) == ("operator", "settled", CLIP_COST_MICROS)


async def test_variations_against_runware_write_one_file_each(
    tmp_path: Path, db: Path, runware: RunwareSimulator
) -> None:
    out = tmp_path / "out"
    run = await generate(
        tmp_path, "two boats at dawn", "--variations", "2", "--out", str(out), env=against(runware, db)
    )
    seeds = assert_clips(run, tmp_path, out, 2, simulated=False)
    [task] = [t for r in runware.requests for t in r.tasks if t.get("taskType") == "videoInference"]
    assert task["numberResults"] == 2
    assert sorted(seeds) == sorted(g.seed for g in runware.tasks[task["taskUUID"]].generations)
    [money] = read_rows(db, "SELECT * FROM ledger")
    assert (money["status"], money["charged_micros"]) == ("settled", 2 * CLIP_COST_MICROS)


async def test_one_character_prompt_is_refused_before_anything_is_sent(
    tmp_path: Path, db: Path, runware: RunwareSimulator
) -> None:
    dry, real = await asyncio.gather(
        generate(tmp_path, "--dry-run", "x", "--out", str(tmp_path / "a"), env=fast(db)),
        generate(tmp_path, "y", "--out", str(tmp_path / "b"), env=against(runware, tmp_path / "real.sqlite3")),
    )
    for run in (dry, real):
        assert_one_line_error(run, "too short")
    assert runware.requests == []
    for path in (db, tmp_path / "real.sqlite3"):
        assert not path.exists() or read_rows(path, "SELECT * FROM jobs") == []
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


async def test_rejected_task_is_one_line_and_releases_the_reservation(
    tmp_path: Path, db: Path, runware: RunwareSimulator
) -> None:
    runware.faults.reject_next_submits("insufficientCredits", 1, http_status=402)
    run = await generate(tmp_path, "a quiet forest", "--out", str(tmp_path / "out"), env=against(runware, db))
    assert_one_line_error(run, "credits")
    assert runware.submit_count() == 1
    [job] = read_rows(db, "SELECT * FROM jobs")
    assert job["state"] == "failed"
    [money] = read_rows(db, "SELECT * FROM ledger")
    assert (money["status"], money["charged_micros"]) == ("released", 0)


async def test_missing_key_or_config_file_is_one_line(tmp_path: Path, db: Path) -> None:
    no_key, no_file = await asyncio.gather(
        generate(tmp_path, "a prompt", env=fast(db)),
        generate(tmp_path, "--config", "/nope.toml", "a prompt", env=fast(db)),
    )
    assert_one_line_error(no_key, "RUNWARE_API_KEY", "--dry-run")
    assert_one_line_error(no_file, "/nope.toml")
    assert not db.exists()
