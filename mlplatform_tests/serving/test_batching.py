"""Micro-batching: plain asyncio and threads, no web server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import pytest

from mlplatform.serving.batching import MicroBatcher


class Work:
    """Doubles every item; records each batch; can hold a batch until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.follow_ups: list[list[int]] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def __call__(self, items: Sequence[int]) -> tuple[list[int], Callable[[], None]]:
        self.batches.append(list(items))
        self.started.set()
        self.release.wait(10)
        if any(item < 0 for item in items):
            raise ValueError(f"negative item in {list(items)}")
        return [2 * item for item in items], lambda: self.follow_ups.append(list(items))


def test_requests_waiting_together_are_one_batch_and_each_gets_its_own_answer() -> None:
    work = Work()
    batcher: MicroBatcher[int, int] = MicroBatcher(work)

    async def scenario() -> tuple[int, list[int]]:
        work.release.clear()
        first = asyncio.create_task(batcher.submit(1))
        while not work.started.is_set():  # the first item is being worked on, alone
            await asyncio.sleep(0.001)
        rest = [asyncio.create_task(batcher.submit(n)) for n in range(10, 15)]
        await asyncio.sleep(0.05)  # the five queue up behind the running batch
        work.release.set()
        answers = await first, list(await asyncio.gather(*rest))
        await batcher.close()
        return answers

    alone, together = asyncio.run(scenario())

    assert (alone, together) == (2, [20, 22, 24, 26, 28])
    assert work.batches == [[1], [10, 11, 12, 13, 14]]
    assert work.follow_ups == work.batches  # each batch's follow-up ran, after its answers


def test_a_failing_batch_fails_only_the_item_that_breaks_it() -> None:
    """Items 3, -1 and 5 arrive together; -1 breaks the batch. The batch is worked on again item by
    item: only -1 fails, 3 and 5 get their own answers (and follow-ups), and the next batch is served."""
    work = Work()
    batcher: MicroBatcher[int, int] = MicroBatcher(work)

    async def scenario() -> tuple[list[object], int]:
        answers = await asyncio.gather(
            batcher.submit(3), batcher.submit(-1), batcher.submit(5), return_exceptions=True
        )
        later = await batcher.submit(4)
        await batcher.close()
        return list(answers), later

    answers, later = asyncio.run(scenario())

    assert answers[0] == 6 and answers[2] == 10
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "negative item in [-1]"
    assert later == 8
    assert work.batches == [[3, -1, 5], [3], [-1], [5], [4]]
    assert work.follow_ups == [[3], [5], [4]]


def test_a_failing_follow_up_is_logged_and_does_not_stop_the_batcher(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def work(items: Sequence[int]) -> tuple[list[int], Callable[[], None]]:
        def follow_up() -> None:
            raise RuntimeError("the log is full")

        return list(items), follow_up

    batcher: MicroBatcher[int, int] = MicroBatcher(work)

    async def scenario() -> list[int]:
        answers = [await batcher.submit(1), await batcher.submit(2)]
        await batcher.close()  # waits for both follow-ups
        return answers

    answers = asyncio.run(scenario())

    assert answers == [1, 2]
    assert [r.getMessage() for r in caplog.records] == ["follow-up work of a batch failed"] * 2


def test_the_next_batch_waits_for_as_many_requests_as_the_last_had() -> None:
    work = Work()
    batcher: MicroBatcher[int, int] = MicroBatcher(work, max_wait_seconds=5.0)

    async def scenario() -> list[int]:
        await asyncio.gather(*[batcher.submit(n) for n in (1, 2, 3)])  # one batch of three
        early = [asyncio.create_task(batcher.submit(n)) for n in (4, 5)]
        await asyncio.sleep(0.05)  # the third caller comes back later than the others
        late = asyncio.create_task(batcher.submit(6))
        answers = list(await asyncio.gather(*early, late))
        await batcher.close()
        return answers

    assert asyncio.run(scenario()) == [8, 10, 12]
    assert work.batches == [[1, 2, 3], [4, 5, 6]]


def test_the_wait_for_company_is_bounded() -> None:
    work = Work()
    batcher: MicroBatcher[int, int] = MicroBatcher(work, max_wait_seconds=0.05)

    async def scenario() -> float:
        await asyncio.gather(*[batcher.submit(n) for n in (1, 2, 3)])
        started = asyncio.get_running_loop().time()
        await batcher.submit(4)  # nobody else comes
        waited = asyncio.get_running_loop().time() - started
        await batcher.close()
        return waited

    waited = asyncio.run(scenario())

    assert work.batches == [[1, 2, 3], [4]]
    assert 0.04 <= waited < 2.0


def test_a_lone_caller_after_a_lone_request_is_not_held() -> None:
    work = Work()
    batcher: MicroBatcher[int, int] = MicroBatcher(work, max_wait_seconds=5.0)

    async def scenario() -> float:
        await batcher.submit(1)
        started = asyncio.get_running_loop().time()
        await batcher.submit(2)
        waited = asyncio.get_running_loop().time() - started
        await batcher.close()
        return waited

    assert asyncio.run(scenario()) < 1.0  # far below the 5 s it would wait for company
