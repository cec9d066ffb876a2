r"""Planned REST faults for the fake Discord: 429s shaped as Discord sends them, 5xx, and "apply then fail".

fake.faults.add(method="POST", path_regex=r"/channels/\d+/messages", status=429, retry_after=0.3)
fake.faults.add(method="POST", path_regex=r"/channels/\d+/messages", status=429, retry_after=0.3, global_=True)
fake.faults.add(method="PATCH", path_regex=r"/channels/\d+/messages/\d+", status=503)
fake.faults.add(method="POST", path_regex=r"/channels/\d+/messages", status=500, apply=True)  # created, then 500
assert [s.status for s in fake.faults.served] == [429, 429, 503, 500]

How discord.py 2.x (http.py, webhook/async_.py) reacts, which is what these answers are shaped for:
- 429: needs a `Via` header (else it takes it for a Cloudflare ban and raises) and a JSON body; it sleeps the body's
  `retry_after` and sends again (up to 5 tries); `"global": true` also holds every other request meanwhile.
- 500, 502, 504 (and 524): the client sleeps 1 + 2*try seconds and sends again; the webhook adapter (interaction
  followups) does so for every 5xx.
- 503 (and any 5xx after five tries) on the bot's own routes: DiscordServerError, left to the bot.
- `apply=True`: the request takes effect (a message is created or edited, with its gateway event) and then the fault
  is answered, as Discord sometimes does; a retried POST with the same nonce and enforce_nonce gets the earlier
  message back, nothing else does.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import RecordedRequest

RATE_LIMITED = "You are being rate limited."
REASONS = {
    500: "500: Internal Server Error",
    502: "502: Bad Gateway",
    503: "503: Service Unavailable",
    504: "504: Gateway Timeout",
}
SCOPES = ("user", "global", "shared")


@dataclass
class DiscordFault:
    """A planned failure for the next `times` requests matching method, path and `when`."""

    method: str
    status: int
    times: int
    path_regex: re.Pattern[str] | None = None  # full match on the path below /api/v10, e.g. /channels/1/messages
    template: str | None = None  # or the spec's route template, e.g. /channels/{channel_id}/messages
    retry_after: float = 0.3
    global_: bool = False
    scope: str = "user"
    apply: bool = False
    when: Callable[[RecordedRequest], bool] | None = None
    served: int = 0

    @property
    def remaining(self) -> int:
        """Return how many more requests this fault will answer."""
        return self.times - self.served

    def matches(self, rec: RecordedRequest) -> bool:
        """Tell whether this fault answers a request (body already read)."""
        if self.remaining <= 0 or rec.method != self.method:
            return False
        if self.template is not None and rec.template != self.template:
            return False
        if self.path_regex is not None and self.path_regex.fullmatch(rec.path) is None:
            return False
        return self.when is None or self.when(rec)

    def answer(self, rec: RecordedRequest, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """Return Discord's answer for this fault (status, JSON body, headers), given the route's usual headers."""
        if self.status != 429:
            reason = REASONS.get(self.status, f"{self.status}: Fake Discord fault")
            return self.status, {"message": reason, "code": 0}, headers
        headers = {
            "Retry-After": str(max(1, math.ceil(self.retry_after))),  # whole seconds, rounded up, as Discord does
            "X-RateLimit-Scope": self.scope,
            "Via": "1.1 google",  # discord.py takes a 429 without Via for a Cloudflare ban
        }
        if self.global_:
            headers["X-RateLimit-Global"] = "true"  # a global limit carries no bucket headers
        else:
            headers.update(
                {
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                    "X-RateLimit-Bucket": bucket_hash(rec),
                }
            )
        body = {"message": RATE_LIMITED, "retry_after": self.retry_after, "global": self.global_, "code": 0}
        return 429, body, headers


@dataclass
class ServedFault:
    """One fault answer the fake gave: to which request, and whether the request had taken effect first."""

    fault: DiscordFault
    request: RecordedRequest
    applied: bool

    @property
    def status(self) -> int:
        """Return the status answered."""
        return self.fault.status


@dataclass
class FaultPlan:
    """The faults planned for the fake's REST API, and every one served (for tests to assert they happened)."""

    planned: list[DiscordFault] = field(default_factory=list)
    served: list[ServedFault] = field(default_factory=list)

    def add(
        self,
        *,
        method: str,
        status: int,
        path_regex: str | None = None,
        template: str | None = None,
        times: int = 1,
        retry_after: float = 0.3,
        global_: bool = False,
        scope: str | None = None,
        apply: bool = False,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> DiscordFault:
        """Plan a fault for the next `times` requests matching method, path (regex or template) and `when`.

        status 429 answers Discord's rate-limit shape (retry_after, global_, scope user/global/shared);
        apply=True lets the request take effect before the fault is answered.
        """
        if path_regex is None and template is None:
            raise ValueError("give path_regex or template")
        scope = scope or ("global" if global_ else "user")
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        if not 400 <= status < 600:
            raise ValueError("a fault answers 4xx or 5xx")
        fault = DiscordFault(
            method=method.upper(),
            status=status,
            times=times,
            path_regex=re.compile(path_regex) if path_regex is not None else None,
            template=template,
            retry_after=retry_after,
            global_=global_,
            scope=scope,
            apply=apply,
            when=when,
        )
        self.planned.append(fault)
        return fault

    def take(self, rec: RecordedRequest) -> DiscordFault | None:
        """Return the first planned fault matching a request, counting it as served."""
        for fault in self.planned:
            if fault.matches(rec):
                fault.served += 1
                return fault
        return None

    def record(self, fault: DiscordFault, rec: RecordedRequest, *, applied: bool) -> None:
        """Remember a fault answer."""
        self.served.append(ServedFault(fault, rec, applied))

    def served_for(self, fault: DiscordFault) -> list[ServedFault]:
        """Return the answers one planned fault gave."""
        return [s for s in self.served if s.fault is fault]

    @property
    def pending(self) -> list[DiscordFault]:
        """Return the planned faults not yet used up."""
        return [f for f in self.planned if f.remaining > 0]

    def clear(self) -> None:
        """Drop every planned fault (what was served stays recorded)."""
        self.planned.clear()


def bucket_hash(rec: RecordedRequest) -> str:
    """Return the fake's X-RateLimit-Bucket for a request's route."""
    return hashlib.sha1(f"{rec.method} {rec.template}".encode()).hexdigest()[:32]
