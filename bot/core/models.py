"""Domain types shared by the core. People and places are integer ids, never discord.py objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

Micros = int  #: money: integer micro-dollars (1 USD = 1_000_000)

MICROS_PER_USD = 1_000_000


class JobState(StrEnum):
    """A job's life. Legal moves are in JOB_TRANSITIONS; every move is a compare-and-set in the store."""

    RESERVED = "reserved"  # row + reservation written; not yet acknowledged by Runware
    SUBMITTED = "submitted"  # Runware acknowledged (or getResponse proved it knows the task)
    SUCCEEDED = "succeeded"  # all results in (some may have failed individually)
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # member stopped tracking; reservation held until cost is known or expiry


FINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.EXPIRED})

JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.RESERVED: frozenset({JobState.SUBMITTED, JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED}),
    JobState.SUBMITTED: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.EXPIRED, JobState.CANCELLED}),
    JobState.CANCELLED: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.EXPIRED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.EXPIRED: frozenset(),
}


class ResultState(StrEnum):
    PENDING = "pending"  # received, not yet posted
    DELIVERING = "delivering"  # a post is under way (nonce fixed); on restart: look before posting again
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"  # channel and DM both failed; result kept
    SKIPPED = "skipped"  # job was cancelled: never posted


RESULT_TRANSITIONS: dict[ResultState, frozenset[ResultState]] = {
    ResultState.PENDING: frozenset({ResultState.DELIVERING, ResultState.SKIPPED}),
    ResultState.DELIVERING: frozenset(
        {ResultState.DELIVERED, ResultState.UNDELIVERABLE, ResultState.PENDING, ResultState.SKIPPED}
    ),
    ResultState.DELIVERED: frozenset(),
    ResultState.UNDELIVERABLE: frozenset(),
    ResultState.SKIPPED: frozenset(),
}


class Scope(StrEnum):
    MEMBER = "member"
    ROLE = "role"
    CHANNEL = "channel"
    SERVER = "server"


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Payer(StrEnum):
    """Which budget a job is charged to."""

    MEMBER = "member"
    POOL = "pool"  # the channel's budget (team pool)
    OPERATOR = "operator"  # `hailuo-bot generate`: outside member/role/channel limits


class SafetyMode(StrEnum):
    NONE = "none"
    FAST = "fast"
    FULL = "full"


@dataclass(frozen=True, slots=True)
class ImageInput:
    """A checked frame image, ready to upload."""

    filename: str
    data: bytes
    mime: str  # image/png | image/jpeg | image/webp
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job is: who asked where, for what, paid by whom, and its estimate (a new job's and a stored one's)."""

    task_uuid: str
    guild_id: int
    channel_id: int
    user_id: int
    payer: Payer
    pool_channel_id: int | None
    prompt: str
    resolution: str
    duration: int
    variations: int
    prompt_optimizer: bool
    frame_count: int
    estimate_micros: Micros
    dry_run: bool


@dataclass(frozen=True, slots=True)
class Job(JobSpec):
    """A job row as stored."""

    id: int
    state: JobState
    cost_micros: Micros | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    status_channel_id: int | None = None
    status_message_id: int | None = None
    thread_id: int | None = None
    parent_job_id: int | None = None
    extra: dict[str, object] = field(default_factory=dict)  # params_json: image UUIDs, safety mode, ... (reroll)
    budget_channel_id: int = 0  # root channel whose limits/pool paid (channel_id may be a thread); 0 for the CLI
    submit_attempts: int = 0

    def params_dict(self) -> dict[str, object]:
        """A copy of the job's extra parameters (params_json), safe to extend and store back."""
        return dict(self.extra)


@dataclass(frozen=True, slots=True)
class ClipResult:
    """One generated clip of a job."""

    id: int
    job_id: int
    video_uuid: str
    video_url: str
    seed: int | None
    cost_micros: Micros | None
    state: ResultState
    message_id: int | None
    created_at: datetime
    channel_id: int | None = None  # where it was posted (or the DM channel)
    attempts: int = 0  # delivery attempts
    delivered_at: datetime | None = None


def usd_to_micros(usd: float | str) -> Micros:
    """Convert a USD amount (as parsed from config, API or a command) to micro-dollars, rounding half up."""
    from decimal import ROUND_HALF_UP, Decimal

    return int((Decimal(str(usd)) * MICROS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_usd(micros: Micros) -> str:
    """$0.49, $12.00; sub-cent amounts keep their digits ($0.0035)."""
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    whole, frac = divmod(micros, MICROS_PER_USD)
    frac_s = f"{frac:06d}".rstrip("0")
    frac_s = frac_s.ljust(2, "0")
    return f"{sign}${whole}.{frac_s}"


def utc_now() -> datetime:
    """The default clock of the core (tests inject their own)."""
    return datetime.now(UTC)
