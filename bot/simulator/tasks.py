"""The simulator's task handlers: videoInference, getResponse, imageUpload, accountManagement, and the
generation state they report (cumulative, as Runware's getResponse is)."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bot.runware.models import (
    AccountManagementTask,
    FrameImage,
    GetResponseTask,
    ImageUploadTask,
    VideoInferenceTask,
    decode_image,
    frame_positions,
    image_ref_kind,
    plain_get_response_uuid,
    sniff_image,
)
from bot.simulator.faults import Faults, SimGeneration, SimTask, api_error, validation_error

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@dataclass(slots=True)
class _Outcome:
    data: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ok: bool = True
    http_status: int = 400


def _failed(error: dict[str, Any], http_status: int = 400) -> _Outcome:
    return _Outcome(errors=[error], ok=False, http_status=http_status)


class TaskHandlers:
    """Mixed into RunwareSimulator: one method per taskType, each answering an _Outcome."""

    faults: Faults
    tasks: dict[str, SimTask]
    images: dict[str, tuple[bytes, str]]
    costs: dict[tuple[int, int, int], float]
    max_results: int
    balance: float | None
    auto_complete: bool
    processing_seconds: float
    origin: str
    _used_uuids: set[str]
    _videos: dict[str, SimTask]
    _rng: random.Random
    _timers: dict[str, asyncio.TimerHandle]

    def now(self) -> float:
        raise NotImplementedError

    def finish(self, task_uuid: str) -> None:
        raise NotImplementedError

    def _video_inference(self, raw: dict[str, Any]) -> _Outcome:
        try:
            task = VideoInferenceTask.model_validate(raw)
        except ValidationError as exc:
            return _failed(validation_error(exc, raw, "videoInference"))
        uuid_ = task.task_uuid

        def refuse(code: str, message: str, parameter: str | None = None, **extra: Any) -> _Outcome:
            error = api_error(code, message, parameter=parameter, task_type="videoInference", task_uuid=uuid_, **extra)
            return _failed(error)

        if task.results > self.max_results:
            message = f"numberResults must be at most {self.max_results}."
            return refuse("invalidNumberResults", message, "numberResults", min=1, max=self.max_results)
        if task.inputs is not None:
            items = task.inputs.frame_images
            for item in items:
                problem = self._image_problem(item.image if isinstance(item, FrameImage) else item)
                if problem:
                    return refuse("invalidFrameImage", problem, "inputs.frameImages")
            if not self.faults.accept_last_frame and "last" in frame_positions(items):
                message = "This model supports only a first frame image; frame 'last' (or -1) is not supported."
                return refuse("invalidFrameImages", message, "inputs.frameImages", allowedValues=["first", 0])
        if uuid_ in self._used_uuids:
            return refuse("conflictTaskUUID", "A task with this taskUUID already exists.", "taskUUID")
        if self.faults.reject_submits:
            spec = self.faults.reject_submits.popleft()
            return _failed(
                api_error(spec.code, spec.message, task_type="videoInference", task_uuid=uuid_), spec.http_status
            )
        price = self.costs.get(task.size_key, 0.0) * task.results
        if self.balance is not None:
            if self.balance < price:
                error = api_error(
                    "insufficientCredits",
                    "Insufficient credits to run this task.",
                    task_type="videoInference",
                    task_uuid=uuid_,
                )
                return _failed(error, 402)
            self.balance = round(self.balance - price, 6)
        self._used_uuids.add(uuid_)
        generations = [SimGeneration(i, str(uuid.uuid4()), self._rng.randrange(1, 2**31)) for i in range(task.results)]
        fail = self.faults.fail_tasks.popleft() if self.faults.fail_tasks else None
        sim = SimTask(task, self.now(), generations, fail)
        self.tasks[uuid_] = sim
        if self.auto_complete:
            loop = asyncio.get_running_loop()
            self._timers[uuid_] = loop.call_later(max(self.processing_seconds, 0.0), self.finish, uuid_)
        return _Outcome(data=[{"taskType": "videoInference", "taskUUID": uuid_}])

    def _get_response(self, raw: dict[str, Any]) -> _Outcome:
        task_uuid = plain_get_response_uuid(raw)  # the usual shape, checked without a model (sweeps ask thousands)
        if task_uuid is None:
            try:
                task_uuid = GetResponseTask.model_validate(raw).task_uuid
            except ValidationError as exc:
                return _failed(validation_error(exc, raw, "getResponse"))
        sim = self.tasks.get(task_uuid)
        if sim is None:
            message = "No task was found with this taskUUID, or it failed before it started."
            error = api_error(
                "taskFailedOrNotFound", message, parameter="taskUUID", task_type="getResponse", task_uuid=task_uuid
            )
            return _failed(error)
        self._maybe_complete(sim)
        return self._state(sim)

    def _image_upload(self, raw: dict[str, Any]) -> _Outcome:
        try:
            task = ImageUploadTask.model_validate(raw)
        except ValidationError as exc:
            return _failed(validation_error(exc, raw, "imageUpload"))

        def refuse(code: str, message: str, parameter: str) -> _Outcome:
            return _failed(
                api_error(code, message, parameter=parameter, task_type="imageUpload", task_uuid=task.task_uuid)
            )

        problem = self._image_problem(task.image)
        if problem:
            return refuse("invalidImage", problem, "image")
        if task.task_uuid in self._used_uuids:
            return refuse("conflictTaskUUID", "A task with this taskUUID already exists.", "taskUUID")
        self._used_uuids.add(task.task_uuid)
        kind = image_ref_kind(task.image)
        if kind == "uuid":
            image_uuid = task.image
        else:
            image_uuid = str(uuid.uuid4())
            data = decode_image(task.image) if kind in ("data_uri", "base64") else None
            self.images[image_uuid] = (data or b"", sniff_image(data or b"") or "image/png")
        ext = _EXTENSIONS.get(self.images[image_uuid][1], "png")
        item = {
            "taskType": "imageUpload",
            "taskUUID": task.task_uuid,
            "imageUUID": image_uuid,
            "imageURL": f"{self.origin}/image/{image_uuid}.{ext}",
        }
        return _Outcome(data=[item])

    def _account(self, raw: dict[str, Any]) -> _Outcome:
        try:
            task = AccountManagementTask.model_validate(raw)
        except ValidationError as exc:
            return _failed(validation_error(exc, raw, "accountManagement"))
        amount = 1000.0 if self.balance is None else self.balance
        balance: Any = {"amount": amount, "currency": "USD"} if self.faults.balance_as_object else amount
        item = {
            "taskType": "accountManagement",
            "taskUUID": task.task_uuid,
            "organizationUUID": "00000000-0000-4000-8000-000000000000",
            "organizationName": "Runware simulator",
            "balance": balance,
        }
        return _Outcome(data=[item])

    def _image_problem(self, image: str) -> str | None:
        kind = image_ref_kind(image)
        if kind == "uuid":
            return None if image in self.images else f"Image {image} is unknown; upload it with imageUpload first."
        if kind in ("data_uri", "base64"):
            data = decode_image(image)
            if not data or sniff_image(data) is None:
                return "The image could not be decoded as PNG, JPEG or WEBP."
            return None
        if kind == "url":
            return None
        return "The image must be a UUID, a URL, a data URI or base64."

    # ------------------------------------------------------------------------------------- generation state

    def _maybe_complete(self, sim: SimTask) -> None:
        if self.auto_complete and not sim.finished and self.now() - sim.submitted_at >= self.processing_seconds:
            self.finish(sim.task_uuid)

    def _items(self, sim: SimTask, *, webhook: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        data: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        base = {"taskType": "videoInference", "taskUUID": sim.task_uuid}
        for gen in sim.generations:
            if gen.status == "processing":
                item: dict[str, Any] = {**base, "status": "processing"}
                if self.processing_seconds > 0:
                    elapsed = self.now() - sim.submitted_at
                    item["progress"] = min(99, int(100 * elapsed / self.processing_seconds))
                data.append(item)
            elif gen.status == "success":
                item = {**base} if webhook else {**base, "status": "success"}  # webhooks carry no status
                item["videoUUID"] = gen.video_uuid
                item["videoURL"] = self.faults.clip_urls.get(sim.task_uuid, f"{self.origin}/video/{gen.video_uuid}.mp4")
                item["seed"] = gen.seed
                if sim.task.include_cost:
                    item["cost"] = self.faults.costs_by_task.get(sim.task_uuid, self.costs.get(sim.task.size_key, 0.0))
                data.append(item)
            elif self.faults.inline_generation_errors and not webhook:
                data.append(
                    {**base, "status": "error", "error": {"code": gen.error_code, "message": gen.error_message}}
                )
            else:
                code, message = str(gen.error_code), str(gen.error_message)
                errors.append(
                    api_error(code, message, task_type="videoInference", task_uuid=sim.task_uuid, status="error")
                )
        return data, errors

    def _state(self, sim: SimTask) -> _Outcome:
        data, errors = self._items(sim, webhook=False)
        return _Outcome(data=data, errors=errors)
