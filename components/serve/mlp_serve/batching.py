"""Adaptive micro-batching: concurrent requests share one traced TensorFlow call.

The request handler parses its body into a float32 matrix and awaits
``MicroBatcher.predict(model, rows)`` on the event loop. The batcher gathers pending requests
and runs them as one call ``model.predict(concatenated)`` on a small thread pool, then hands
each request its own slice of the answer. All bookkeeping happens on the event-loop thread, so
there are no locks; only the TensorFlow call runs on a worker thread.

When does a batch run?

- Never while every worker is busy: requests arriving meanwhile queue up, and the batch that
  finishes starts the next one at once with up to ``max_batch_size`` queued rows. Under load
  batches therefore fill by themselves, without any waiting.
- Otherwise, as soon as the pending rows reach ``max_batch_size``, or ``max_delay`` seconds
  after the first pending request arrived, whichever comes first.
- Adaptive: if the last batch carried a single request (nobody else was around), the next
  request does not wait for ``max_delay`` either; it goes on the next event-loop turn, which
  still lets requests parsed in the same turn join it. A lone client never pays the delay.

A request with more rows than ``max_batch_size`` runs alone; requests are never split. A batch
only holds requests for the same ``model`` object, so a hot swap never mixes versions. The rows
of one request produce the same numbers whether it runs alone or inside a batch: a dense
network computes each row independently, and every call is padded to the same shape so the
kernels do not change with the batch size (the server tests check this on real models).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mlp_serve import metrics
from mlp_serve.payload import Matrix


class BatchModel(Protocol):
    """What the batcher needs from a loaded model version."""

    @property
    def predict(self) -> Callable[[Matrix], np.ndarray]: ...


@dataclass(frozen=True)
class BatchSettings:
    max_batch_size: int = 32  # rows per TensorFlow call
    max_delay: float = 0.001  # seconds the first request of a batch may wait for company
    workers: int = 1  # concurrent TensorFlow calls (the CPU limit)

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_delay < 0:
            raise ValueError(f"max_delay must be >= 0, got {self.max_delay}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


@dataclass
class _Pending:
    model: Any
    rows: Matrix
    answer: asyncio.Future[np.ndarray]


def run_batch(
    predict: Callable[[Matrix], np.ndarray], parts: list[Matrix], shape_rows: int = 1
) -> list[np.ndarray]:
    """One model call for all ``parts``; the answer split back into one array per part.

    The call's input is padded with zero rows to a multiple of ``shape_rows``. TensorFlow's
    matrix kernels pick their blocking from the batch dimension, so the same row can come
    out a few ulps apart in batches of different sizes; with every call of one shape (the
    batcher passes ``max_batch_size``), a request's answer is bitwise the same whether it ran
    alone or with others. The padding costs nothing measurable for a dense network of this size.
    """
    rows = np.concatenate(parts) if len(parts) > 1 else parts[0]
    count = len(rows)
    padded = -(-count // shape_rows) * shape_rows
    if padded != count:
        rows = np.concatenate([rows, np.zeros((padded - count, *rows.shape[1:]), rows.dtype)])
    answer = predict(rows)[:count]
    if len(parts) == 1:
        return [answer]
    cuts = np.cumsum([len(part) for part in parts[:-1]])
    return np.split(answer, cuts)


class MicroBatcher:
    def __init__(self, settings: BatchSettings) -> None:
        self.settings = settings
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="predict"
        )
        self._pending: deque[_Pending] = deque()
        self._pending_rows = 0
        self._busy = 0
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self._lone = True

    async def predict(self, model: BatchModel, rows: Matrix) -> np.ndarray:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[np.ndarray] = loop.create_future()
        self._pending.append(_Pending(model, rows, answer))
        self._pending_rows += len(rows)
        self._schedule(loop)
        return await answer

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- event-loop bookkeeping --------------------------------------------------------------
    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._busy >= self.settings.workers:
            return  # the batch in flight starts the next one when it finishes
        now = (
            self._lone
            or self.settings.max_delay == 0
            or self._pending_rows >= self.settings.max_batch_size
        )
        if now:
            if isinstance(self._timer, asyncio.TimerHandle):
                self._timer.cancel()
                self._timer = None
            if self._timer is None:
                self._timer = loop.call_soon(self._flush, loop)
        elif self._timer is None:
            self._timer = loop.call_later(self.settings.max_delay, self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()  # harmless when it is the handle running now
            self._timer = None
        limit = self.settings.max_batch_size
        while self._pending and self._busy < self.settings.workers:
            model = self._pending[0].model
            batch: list[_Pending] = []
            rows = 0
            while self._pending and self._pending[0].model is model:
                item = self._pending[0]
                if batch and rows + len(item.rows) > limit:
                    break
                self._pending.popleft()
                self._pending_rows -= len(item.rows)
                if item.answer.done():  # the client went away while it waited
                    continue
                batch.append(item)
                rows += len(item.rows)
            if not batch:
                continue
            self._busy += 1
            self._lone = len(batch) == 1
            metrics.BATCH_REQUESTS.observe(len(batch))
            future = loop.run_in_executor(
                self._executor,
                run_batch,
                model.predict,
                [item.rows for item in batch],
                self.settings.max_batch_size,
            )
            future.add_done_callback(functools.partial(self._finish, loop, batch))

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Pending],
        done: asyncio.Future[list[np.ndarray]],
    ) -> None:
        self._busy -= 1
        error = None if done.cancelled() else done.exception()
        if done.cancelled() or error is not None:
            for item in batch:
                if not item.answer.done():
                    item.answer.set_exception(error or asyncio.CancelledError())
        else:
            for item, answer in zip(batch, done.result(), strict=True):
                if not item.answer.done():
                    item.answer.set_result(answer)
        if self._pending:
            self._flush(loop)
