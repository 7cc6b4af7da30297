"""``MicroBatcher`` on a real event loop with a NumPy stand-in for the traced model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from mlp_serve.batching import BatchSettings, MicroBatcher, run_batch


@dataclass(eq=False)
class FakeModel:
    """Row-wise arithmetic that records every call it gets (rows per call, calling thread)."""

    offset: float = 0.0
    delay: float = 0.0
    fail: bool = False
    calls: list[int] = field(default_factory=list)
    shapes: list[int] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    @property
    def predict(self) -> Callable[[np.ndarray], np.ndarray]:
        def predict(x: np.ndarray) -> np.ndarray:
            # Rows the requests sent: the batcher pads each call with zero rows to one shape
            # (normal draws are never all zero).
            self.calls.append(int(np.any(x != 0, axis=1).sum()))
            self.shapes.append(len(x))
            self.threads.add(threading.current_thread().name)
            if self.delay:
                time.sleep(self.delay)
            if self.fail:
                raise RuntimeError("model exploded")
            return self.expected(x)

        return predict

    def expected(self, x: np.ndarray) -> np.ndarray:
        """What ``predict`` answers for ``x`` alone (computed here, not recorded)."""
        return np.stack([x.sum(axis=1), x.max(axis=1) + self.offset], axis=1)


def rows(seed: int, n: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 4)).astype("float32")


def test_concurrent_requests_share_one_call_and_get_their_own_rows() -> None:
    model = FakeModel()
    inputs = [rows(i, n=1 + i % 3) for i in range(12)]

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(BatchSettings(max_batch_size=64, max_delay=0.05))
        try:
            return list(await asyncio.gather(*(batcher.predict(model, x) for x in inputs)))
        finally:
            batcher.close()

    answers = asyncio.run(scenario())
    assert model.calls == [sum(len(x) for x in inputs)]  # one call for everything
    for x, answer in zip(inputs, answers, strict=True):
        np.testing.assert_array_equal(answer, model.expected(x))
    assert all(name.startswith("predict") for name in model.threads)  # off the event loop


def test_batches_never_exceed_max_rows_and_big_requests_run_alone() -> None:
    model = FakeModel()
    inputs = [rows(i, n=3) for i in range(10)] + [rows(99, n=20)]

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(BatchSettings(max_batch_size=8, max_delay=0.05))
        try:
            return list(await asyncio.gather(*(batcher.predict(model, x) for x in inputs)))
        finally:
            batcher.close()

    answers = asyncio.run(scenario())
    assert sorted(model.calls) == sorted([6, 6, 6, 6, 6, 20])  # 3+3 (a third would exceed 8)
    for x, answer in zip(inputs, answers, strict=True):
        np.testing.assert_array_equal(answer, model.expected(x))


def test_a_lone_client_does_not_wait_for_the_delay() -> None:
    model = FakeModel()

    async def scenario() -> float:
        batcher = MicroBatcher(BatchSettings(max_batch_size=32, max_delay=5.0))
        try:
            start = time.monotonic()
            for i in range(3):
                await batcher.predict(model, rows(i))
            return time.monotonic() - start
        finally:
            batcher.close()

    elapsed = asyncio.run(scenario())
    assert model.calls == [1, 1, 1]
    assert elapsed < 5.0  # a 5 s delay was never taken (the bound is loose on purpose)


def test_requests_queue_behind_a_busy_worker_and_go_together() -> None:
    model = FakeModel(delay=0.2)

    async def scenario() -> None:
        batcher = MicroBatcher(BatchSettings(max_batch_size=32, max_delay=0.0, workers=1))
        try:
            first = asyncio.ensure_future(batcher.predict(model, rows(0)))
            await asyncio.sleep(0.05)  # the first call is running now
            await asyncio.gather(first, *(batcher.predict(model, rows(i)) for i in range(1, 6)))
        finally:
            batcher.close()

    asyncio.run(scenario())
    assert model.calls == [1, 5]


def test_versions_are_never_mixed_in_one_call() -> None:
    old, new = FakeModel(offset=0.0), FakeModel(offset=100.0)
    inputs = [(old if i % 2 else new, rows(i)) for i in range(8)]

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(BatchSettings(max_batch_size=64, max_delay=0.05))
        try:
            return list(await asyncio.gather(*(batcher.predict(m, x) for m, x in inputs)))
        finally:
            batcher.close()

    answers = asyncio.run(scenario())
    assert sum(old.calls) == 4 and sum(new.calls) == 4
    for (model, x), answer in zip(inputs, answers, strict=True):
        np.testing.assert_array_equal(answer, model.expected(x))


def test_a_failing_call_fails_every_request_in_it_and_the_next_batch_still_runs() -> None:
    broken, fine = FakeModel(fail=True), FakeModel()

    async def scenario() -> list[object]:
        batcher = MicroBatcher(BatchSettings(max_batch_size=64, max_delay=0.05))
        try:
            results = await asyncio.gather(
                *(batcher.predict(broken, rows(i)) for i in range(3)), return_exceptions=True
            )
            return [*results, await batcher.predict(fine, rows(9))]
        finally:
            batcher.close()

    *failed, ok = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) and "exploded" in str(r) for r in failed)
    np.testing.assert_array_equal(ok, fine.expected(rows(9)))


def test_run_batch_splits_the_answer_back_per_request() -> None:
    parts = [rows(1, 2), rows(2, 1), rows(3, 4)]
    answers = run_batch(FakeModel().predict, parts)
    assert [len(a) for a in answers] == [2, 1, 4]
    for part, answer in zip(parts, answers, strict=True):
        np.testing.assert_array_equal(answer, FakeModel().expected(part))


@pytest.mark.parametrize(
    "settings",
    [{"max_batch_size": 0}, {"max_delay": -1.0}, {"workers": 0}],
)
def test_settings_reject_nonsense(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        BatchSettings(**settings)  # type: ignore[arg-type]


def test_every_call_has_one_shape_so_answers_do_not_depend_on_the_batch() -> None:
    """Padding: TensorFlow's kernels choose their blocking by batch size, so every call is
    max_batch_size rows (or a multiple, for an oversized request)."""
    parts = [rows(1, 2), rows(2, 1)]
    model = FakeModel()
    answers = run_batch(model.predict, parts, 8)
    assert model.shapes == [8] and model.calls == [3]
    assert [len(a) for a in answers] == [2, 1]
    run_batch(model.predict, [rows(3, 11)], 8)
    assert model.shapes[-1] == 16 and model.calls[-1] == 11
