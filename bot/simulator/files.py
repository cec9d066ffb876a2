"""The simulator's file routes: generated clips (with the slow, redirected and oversized faults) and uploaded
images."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from bot.simulator.clips import clip_for
from bot.simulator.faults import Faults, SimTask

TRICKLE_CHUNK = 256


class FileRoutes:
    """Mixed into RunwareSimulator: GET /video/{name} and /image/{name}."""

    faults: Faults
    clip_bytes: bytes
    varied_clips: bool
    images: dict[str, tuple[bytes, str]]
    _videos: dict[str, SimTask]
    _closing: asyncio.Event

    def now(self) -> float:
        raise NotImplementedError

    async def _stall(self, seconds: float) -> None:
        raise NotImplementedError

    async def _video_file(self, request: web.Request) -> web.StreamResponse:
        video_uuid = request.match_info["name"].rsplit(".", 1)[0]
        sim = self._videos.get(video_uuid)
        if sim is None or sim.finished_at is None:
            raise web.HTTPNotFound()
        if sim.task.ttl is not None and self.now() > sim.finished_at + sim.task.ttl:
            raise web.HTTPNotFound(text="expired")
        if self.faults.redirect_clips_to:
            raise web.HTTPFound(self.faults.redirect_clips_to)
        if sim.task_uuid in self.faults.slow_clips:
            return await self._trickle(request, sim.task_uuid)
        padding = self.faults.oversized_clip_bytes
        if self.varied_clips and not padding:  # each clip its own, its colour changing over time (clips.py)
            return web.Response(body=clip_for(sim, video_uuid, self.clip_bytes), content_type="video/mp4")
        if not padding:
            return web.Response(body=self.clip_bytes, content_type="video/mp4")
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = len(self.clip_bytes) + padding
        chunk = bytes(64 * 1024)
        with contextlib.suppress(ConnectionResetError):
            await response.prepare(request)
            await response.write(self.clip_bytes)
            while padding > 0:
                await response.write(chunk[: min(padding, len(chunk))])
                padding -= len(chunk)
            await response.write_eof()
        return response

    async def _trickle(self, request: web.Request, task_uuid: str) -> web.StreamResponse:
        """Serve the clip a few bytes at a time, spread over faults.slow_clips[task] seconds (the rest at once as soon
        as the task is taken off that list)."""
        data = self.clip_bytes
        pieces = [data[i : i + TRICKLE_CHUNK] for i in range(0, len(data), TRICKLE_CHUNK)]
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = len(data)
        with contextlib.suppress(ConnectionResetError):
            await response.prepare(request)
            for piece in pieces:
                await response.write(piece)
                wait = self.faults.slow_clips.get(task_uuid, 0.0) / len(pieces)
                while wait > 0 and task_uuid in self.faults.slow_clips and not self._closing.is_set():
                    step = min(wait, 0.05)
                    await self._stall(step)
                    wait -= step
            await response.write_eof()
        return response

    async def _image_file(self, request: web.Request) -> web.Response:
        entry = self.images.get(request.match_info["name"].rsplit(".", 1)[0])
        if entry is None or not entry[0]:
            raise web.HTTPNotFound()
        return web.Response(body=entry[0], content_type=entry[1])
