"""Error classification (RUNWARE.md §7, in order, case-insensitive) and the sentences members see."""

from __future__ import annotations

import pytest

from bot.runware.errors import ErrorKind, RunwareError, RunwareUnavailable, classify
from bot.runware.models import RunwareErrorItem
from bot.ui.texts_errors import runware_item_text, runware_text

K = ErrorKind

CASES: list[tuple[str | None, int | None, ErrorKind]] = [
    ("insufficientCredits", 400, K.INSUFFICIENT_CREDITS),
    ("quotaExceeded", None, K.INSUFFICIENT_CREDITS),
    ("paymentRequired", None, K.INSUFFICIENT_CREDITS),
    ("lowBalance", None, K.INSUFFICIENT_CREDITS),
    (None, 402, K.INSUFFICIENT_CREDITS),
    ("rateLimitExceeded", None, K.RATE_LIMITED),
    (None, 429, K.RATE_LIMITED),
    ("contentPolicyViolation", None, K.CONTENT_SAFETY),
    ("providerContentPolicyViolation", None, K.CONTENT_SAFETY),
    ("NSFWContentDetected", None, K.CONTENT_SAFETY),
    ("promptBlocked", 400, K.CONTENT_SAFETY),
    ("imageBlocked", None, K.CONTENT_SAFETY),
    ("invalidApiKey", 401, K.AUTHENTICATION),
    ("invalidApiKey", 400, K.AUTHENTICATION),
    ("unauthorized", None, K.AUTHENTICATION),
    ("permissionDenied", None, K.AUTHENTICATION),
    ("accountSuspended", None, K.AUTHENTICATION),
    ("organizationDisabled", None, K.AUTHENTICATION),
    (None, 401, K.AUTHENTICATION),
    (None, 403, K.AUTHENTICATION),
    ("timeoutProvider", None, K.TIMEOUT),
    ("timeout", 200, K.TIMEOUT),
    ("providerTimeout", None, K.TIMEOUT),
    ("taskFailedOrNotFound", 400, K.NOT_FOUND),
    ("taskNotFound", None, K.NOT_FOUND),
    ("taskCancelled", None, K.NOT_FOUND),
    ("resultExpired", None, K.NOT_FOUND),
    ("internalServerError", None, K.SERVER_ERROR),
    ("serviceUnavailable", None, K.SERVER_ERROR),
    ("errorRetrievingAccountManagement", None, K.SERVER_ERROR),
    (None, 500, K.SERVER_ERROR),
    (None, 503, K.SERVER_ERROR),
    (None, 408, K.SERVER_ERROR),
    ("inferenceError", None, K.PROVIDER_FAILURE),
    ("modelDisabled", None, K.PROVIDER_FAILURE),
    ("providerError", None, K.PROVIDER_FAILURE),
    ("noAvailableServer", 500, K.PROVIDER_FAILURE),
    ("conflictTaskUUID", 400, K.CONFLICT),
    ("unsupportedDuration", None, K.INVALID_REQUEST),
    ("invalidWidth", None, K.INVALID_REQUEST),
    ("missingPositivePrompt", None, K.INVALID_REQUEST),
    ("unsupportedParameter", None, K.INVALID_REQUEST),
    ("unknownParameter", None, K.INVALID_REQUEST),
    ("duplicateTaskUUID", None, K.INVALID_REQUEST),
    ("invalidValueUploadFailed", None, K.INVALID_REQUEST),
    (None, 400, K.INVALID_REQUEST),
    ("somethingNew", 400, K.INVALID_REQUEST),
    ("somethingNew", None, K.UNKNOWN),
    ("unknown", 500, K.SERVER_ERROR),
    (None, None, K.UNKNOWN),
    (None, 200, K.UNKNOWN),
]


@pytest.mark.parametrize(("code", "status", "kind"), CASES, ids=[f"{c}-{s}" for c, s, _ in CASES])
def test_classify(code: str | None, status: int | None, kind: ErrorKind) -> None:
    assert classify(code, status) is kind


def test_classify_is_case_insensitive() -> None:
    assert classify("TIMEOUTPROVIDER", None) is K.TIMEOUT
    assert classify("InsufficientCredits", None) is K.INSUFFICIENT_CREDITS


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_transient_only_for_rate_limits_and_server_errors(kind: ErrorKind) -> None:
    assert RunwareError(kind, "x").transient is (kind in (K.RATE_LIMITED, K.SERVER_ERROR))


def test_unavailable_is_always_transient() -> None:
    exc = RunwareUnavailable("no answer within 30 s", code="clientTimeout")
    assert exc.transient and isinstance(exc, RunwareError)
    assert "try again" in runware_text(exc).lower()


def test_from_item_keeps_parameter_and_allowed_values() -> None:
    item = RunwareErrorItem.model_validate(
        {
            "code": "unsupportedDuration",
            "message": "bad",
            "parameter": "duration",
            "allowedValues": [6],
            "taskUUID": "T",
        }
    )
    exc = RunwareError.from_item(item, 400)
    assert (exc.kind, exc.code, exc.parameter, exc.allowed_values, exc.http_status, exc.task_uuid) == (
        K.INVALID_REQUEST,
        "unsupportedDuration",
        "duration",
        [6],
        400,
        "T",
    )
    text = runware_text(exc)
    assert "duration" in text and "6" in text


USER_TEXTS: list[tuple[dict[str, object], str]] = [
    ({"code": "insufficientCredits"}, "The bot's Runware account is out of credits; whoever runs the bot has to top"),
    ({"code": "contentPolicyViolation"}, "Runware's content checks refused this request"),
    ({"code": "invalidApiKey", "parameter": "apiKey"}, "API key was refused"),
    ({"code": "timeoutProvider"}, "Try again with /video."),
    ({"code": "inferenceError"}, "Try again with /video."),
    (
        {"code": "invalidFrameImages", "parameter": "inputs.frameImages", "message": "frame 'last' is not supported"},
        "This model refused the last frame image; try again without last_frame.",
    ),
    (
        {"code": "invalidValueUploadFailed", "parameter": "inputs.frameImages", "message": "could not read image"},
        "frame images",
    ),
    ({"code": "invalidOutputQuality", "parameter": "outputQuality", "min": 20, "max": 99}, "between 20 and 99"),
    ({"code": "invalidPositivePrompt", "parameter": "positivePrompt", "min": 2, "max": 2000}, "the prompt"),
    ({"code": "unsupportedParameter", "parameter": "seed"}, "bot bug"),
    ({"code": "rateLimitExceeded"}, "busy"),
    ({"code": "somethingNew"}, "unexpected"),
]


@pytest.mark.parametrize(("fields", "expected"), USER_TEXTS, ids=[str(f["code"]) for f, _ in USER_TEXTS])
def test_user_message(fields: dict[str, object], expected: str) -> None:
    text = runware_item_text(RunwareErrorItem.model_validate(fields))
    assert expected in text
    assert text.endswith(".")


def test_user_message_never_leaks_key_or_body() -> None:
    secret = "rw-SECRET-KEY-123"
    exc = RunwareError(K.AUTHENTICATION, "invalidApiKey", f"key {secret} refused", parameter="apiKey", http_status=401)
    assert secret not in runware_text(exc)
    body = '{"errors":[{"code":"weird","message":"raw body"}]}'
    assert body not in runware_text(RunwareError(K.UNKNOWN, "weird", body))
    assert secret not in runware_text(RunwareUnavailable(f"failed {secret}"))
