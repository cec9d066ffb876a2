"""Runware answers checked at the edge (issue 11): impossible values refused, screen-bound strings cleaned."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from bot.runware.models import ResponseEnvelope as ReExported
from bot.runware.results import (
    MAX_RESULT_COST_USD,
    ResponseEnvelope,
    RunwareErrorItem,
    VideoResultItem,
    parse_result_item,
)

TASK = "5481c77d-0596-4375-918e-5e3fc20504f2"


def item(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "taskType": "videoInference",
        "taskUUID": TASK,
        "videoUUID": "352b1681-5735-42d1-8da9-a780e3f14aa4",
        "videoURL": "https://vm.runware.ai/video/os/a12d13/ws/5/vi/352b1681-5735-42d1-8da9-a780e3f14aa4.mp4",
        "seed": 2061368469,
        "cost": 0.49,
    }
    base.update(changes)
    return base


def test_the_seed_pages_result_parses() -> None:
    parsed = VideoResultItem.model_validate(item())
    assert parsed.status == "success" and parsed.cost == 0.49


@pytest.mark.parametrize(
    "changes",
    [
        {"cost": -0.28},
        {"cost": math.nan},
        {"cost": math.inf},
        {"cost": 1e30},
        {"cost": MAX_RESULT_COST_USD + 0.01},
        {"status": "processing", "progress": math.inf, "videoURL": None, "videoUUID": None},
        {"status": "processing", "progress": 250},
        {"seed": 2**70},
        {"videoURL": "https://vm.runware.ai/a.mp4\r\nX-Injected: 1"},
        {"videoUUID": "v1\x00"},
        {"videoURL": "https://vm.runware.ai/" + "a" * 5000},
    ],
)
def test_an_impossible_result_item_is_refused_and_skipped(changes: dict[str, Any]) -> None:
    raw = item(**changes)
    with pytest.raises(ValidationError):
        VideoResultItem.model_validate(raw)
    assert parse_result_item(raw) is None


def test_a_bad_item_in_an_envelope_is_skipped_and_the_good_one_kept() -> None:
    body = json.loads(json.dumps({"data": [item(cost=-1), item(videoUUID="other", cost=0.28)]}))
    [kept] = ResponseEnvelope.parse_any(body).items
    assert kept.video_uuid == "other" and kept.cost == 0.28


def test_fractional_progress_is_rounded() -> None:
    parsed = VideoResultItem.model_validate({"taskUUID": TASK, "status": "processing", "progress": 41.6})
    assert parsed.progress == 42


def test_error_fields_that_reach_a_member_are_cleaned_not_refused() -> None:
    err = RunwareErrorItem.model_validate(
        {
            "code": "invalidWidth\x1b[31m",
            "message": "x" * 10_000,
            "parameter": "width\u0000" + "w" * 500,
            "allowedValues": [1366, "1920\n", math.inf, {"nested": 1}, *range(100)],
            "min": -math.inf,
            "max": math.nan,
            "taskUUID": TASK,
        }
    )
    assert err.code == "invalidWidth[31m" and len(err.message) == 500
    assert err.parameter is not None and len(err.parameter) == 100 and "\x00" not in err.parameter
    assert err.allowed_values is not None and err.allowed_values[:2] == [1366, "1920"] and len(err.allowed_values) <= 20
    assert err.min is None and err.max is None and err.task_uuid == TASK


def test_the_old_import_path_still_works() -> None:
    assert ReExported is ResponseEnvelope
