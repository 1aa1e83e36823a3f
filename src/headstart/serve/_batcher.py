"""Dynamic batching: concurrent requests share one forward pass.

Requests wait on an ``asyncio`` queue; one worker takes whatever is queued (up to
``max_items`` items), runs the predictor once in a thread, and hands each request its rows.
Under no load a request runs alone at once (no added wait); under load the batch grows by
itself, which is what makes a CPU network fast.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Predict = Callable[[Sequence[Any]], np.ndarray]


class Batcher:
    """``await batcher.submit(items)`` returns ``predict(items)``, computed in a batch."""

    def __init__(self, predict: Predict, max_items: int = 64) -> None:
        self.predict = predict
        self.max_items = max_items
        self._pending: deque[tuple[list[Any], asyncio.Future[np.ndarray]]] = deque()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = self._wake = None

    async def submit(self, items: list[Any]) -> np.ndarray:
        if self._wake is None:  # not started (no lifespan): run alone
            return await asyncio.to_thread(self.predict, items)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((items, future))
        self._wake.set()
        return await future

    def _take(self) -> list[tuple[list[Any], asyncio.Future[np.ndarray]]]:
        """The oldest request, and those after it while the batch stays within bounds."""
        jobs = [self._pending.popleft()]
        count = len(jobs[0][0])
        while self._pending and count + len(self._pending[0][0]) <= self.max_items:
            jobs.append(self._pending.popleft())
            count += len(jobs[-1][0])
        return [(items, future) for items, future in jobs if not future.done()]

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                jobs = self._take()
                if jobs:
                    await self._compute(jobs)

    async def _compute(self, jobs: list[tuple[list[Any], asyncio.Future[np.ndarray]]]) -> None:
        items = [x for job, _ in jobs for x in job]
        try:
            proba = await asyncio.to_thread(self.predict, items)
        except Exception as exc:  # every waiting request learns of it
            for _, future in jobs:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for job, future in jobs:
            if not future.done():  # a client that went away has cancelled its future
                future.set_result(proba[start : start + len(job)])
            start += len(job)
