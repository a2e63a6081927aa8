"""Micro-batching: requests that arrive while the model is busy share the next prediction call.

A scikit-learn pipeline costs about the same for 1 row as for 100 (input checks and per-step
overhead dominate), so under concurrent load grouping requests multiplies throughput. Nothing
waits for a batch to fill: an idle server predicts a lone request at once, and a busy one takes
everything that queued up during the previous call (up to ``max_rows``).

A large batch (``offload_rows`` rows or more) is scored in one worker thread, off the event loop,
so health checks and new requests are answered while it runs. Smaller batches (milliseconds) are
scored on the loop itself: handing them to a thread costs more than it frees, since the thread and
the loop contend for the interpreter lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

Columns = dict[str, np.ndarray]
# (scores, decision) per row, as serving/model.py `predict_checked` gives them for the task:
# scores [rows] or [rows, classes] (multi-class), decision [rows]; both split by rows.
Prediction = tuple[np.ndarray, np.ndarray]
PredictFn = Callable[[Columns], Prediction]

log = logging.getLogger(__name__)


@dataclass
class _Item:
    columns: Columns
    n_rows: int
    future: asyncio.Future[Prediction] = field(repr=False)


def concat_columns(parts: list[Columns]) -> Columns:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


# Rows from which a batch is scored off the event loop: about 10 ms of a scikit-learn pipeline.
DEFAULT_OFFLOAD_ROWS = 500


class MicroBatcher:
    """Runs ``predict`` one batch at a time; large batches in one worker thread."""

    def __init__(
        self, predict: PredictFn, max_rows: int = 1024, offload_rows: int = DEFAULT_OFFLOAD_ROWS
    ) -> None:
        self._predict = predict
        self._max_rows = max_rows
        self._offload_rows = offload_rows
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def predict(self, columns: Columns, n_rows: int) -> Prediction:
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(self._queue))
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(columns, n_rows, future))
        return await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._queue = None  # bound to this event loop; a restarted server makes a new one
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            batch = [await queue.get()]
            # One turn of the loop lets requests that are already parsed join this batch.
            await asyncio.sleep(0)
            rows = batch[0].n_rows
            while rows < self._max_rows and not queue.empty():
                item = queue.get_nowait()
                batch.append(item)
                rows += item.n_rows
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[_Item]) -> None:
        live = [item for item in batch if not item.future.done()]  # skip cancelled requests
        if not live:
            return
        columns = concat_columns([i.columns for i in live])
        try:
            if sum(item.n_rows for item in live) < self._offload_rows:
                scores, decision = self._predict(columns)
            else:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
                scores, decision = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._predict, columns
                )
        except Exception:
            if len(live) == 1:
                log.exception("prediction failed")
                if not live[0].future.done():
                    live[0].future.set_exception(RuntimeError("prediction failed"))
                return
            # Retry one by one, so a failure stays with the request that caused it.
            for item in live:
                await self._run_batch([item])
            return
        start = 0
        for item in live:
            end = start + item.n_rows
            if not item.future.done():  # its client may have gone while the batch ran
                item.future.set_result((scores[start:end], decision[start:end]))
            start = end
