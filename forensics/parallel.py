"""The face pipeline spread over worker processes, for enrollment-sized jobs.

Intake (reading, SHA-256, recognising duplicates) stays in this process, which also owns the
database; each worker process holds its own `FacePipeline` (detector and embedder, one PyTorch
thread per core it is given) and turns batches of files read at intake into `FaceRecord`s, their
chips already PNG-encoded. Batches come back in the order they were read, so enrollment writes
the same gallery, in the same order, as it does in one process.

Why processes: the networks run small convolutions that two threads share poorly (detection
1.86x, the descriptor 1.57x faster on two threads than on one), the landmark cascade and PNG
encoding are single-threaded, and one process per core keeps every core busy with all of it.
Starting a worker costs about 3 s of CPU (importing PyTorch, loading the models), so small jobs
are run in this process (`choose_workers`); `make_pipeline` starts the workers at once, so that
they load while this process opens the gallery.

Workers ignore Ctrl-C: this process stops handing out work, and whatever was committed stays.
Workers end by themselves when this process dies, whatever killed it (a watchdog thread in each
notices that its parent changed: `PARENT_POLL_S`), so no worker outlives a killed enrollment.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from forensics.errors import ForensicsError
from forensics.intake import PendingImage, chunks, intake, merge
from forensics.records import EmbedderInfo

#: Below this many images, starting workers costs more than it saves.
MIN_IMAGES_FOR_WORKERS = 128

#: glibc malloc settings for the workers (unless set already): keep freed memory in the heap for
#: the next batch instead of returning every large tensor to the kernel and faulting it back in
#: (system time 7.5 s -> 2.3 s for 2,000 images); a worker keeps its peak memory until it ends.
WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
                 "MALLOC_TOP_PAD_": str(256 << 20)}


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_workers(workers: int | None, n_images: int) -> int:
    """Worker processes to use: `workers` if given (0 = none, work in this process), else one per
    core for jobs of at least `MIN_IMAGES_FOR_WORKERS` images on a machine with several cores."""
    if workers is not None:
        if workers < 0:
            raise ForensicsError(f"--workers must be 0 or more, not {workers}")
        return workers
    cores = cpu_count()
    return min(cores, 8) if cores > 1 and n_images >= MIN_IMAGES_FOR_WORKERS else 0


@dataclass(frozen=True)
class PipelineSpec:
    """What a worker needs to build its own `FacePipeline` (picklable)."""

    embedder: str = "dlib-resnet"
    weights: str | None = None
    select: str = "largest"

    def build(self):
        from forensics.models.registry import load_embedder
        from forensics.pipeline import FacePipeline

        return FacePipeline(embedder=load_embedder(self.embedder, Path(self.weights) if self.weights else None),
                            select=self.select)


# --- in the worker processes ------------------------------------------------------------------

#: Seconds between a worker's checks that the process that started it is still alive.
PARENT_POLL_S = 0.25

_PIPELINE = None
_INIT_ERROR: BaseException | None = None


def _exit_with_parent(parent: int) -> None:
    """End this worker at once when `parent` is no longer its parent process (it died)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _init_worker(spec: PipelineSpec, threads: int, parent: int) -> None:
    global _PIPELINE, _INIT_ERROR
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watchdog", daemon=True).start()
    import torch

    torch.set_num_threads(threads)
    try:
        _PIPELINE = spec.build()
    except Exception as e:  # noqa: BLE001 - reported with the first task, in the main process
        _INIT_ERROR = e


def _pipeline():
    if _INIT_ERROR is not None:
        raise _INIT_ERROR
    return _PIPELINE


def _ready() -> None:
    _pipeline()


def _compute(pending: list[PendingImage], kind: str, encode_chips: bool) -> list:
    return _pipeline().compute(pending, kind, encode_chips)


# --- in the main process ----------------------------------------------------------------------


class ParallelPipeline:
    """`FacePipeline.process` with decoding, detection, alignment and embedding in `workers`
    processes. Use it as a context manager (the workers stop at the end)."""

    def __init__(self, spec: PipelineSpec, workers: int):
        if workers < 1:
            raise ValueError("ParallelPipeline needs at least one worker")
        self.spec = spec
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._info: EmbedderInfo | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            threads = max(1, cpu_count() // self.workers)
            for k, v in WORKER_MALLOC.items():  # read by each worker's C library at its start
                os.environ.setdefault(k, v)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.spec, threads, os.getpid()))
        return self._pool

    def start(self) -> ParallelPipeline:
        """Start the workers now (they take ~3 s to load), so that they load while this process
        opens the gallery."""
        pool = self._executor()
        for _ in range(self.workers):
            pool.submit(_ready)
        return self

    @property
    def embedder_info(self) -> EmbedderInfo:
        """From the weights file (no worker needs to start); every result is checked against it."""
        if self._info is None:
            from forensics.models.registry import embedder_info

            self._info = embedder_info(self.spec.embedder, Path(self.spec.weights) if self.spec.weights else None)
        return self._info

    def process(self, paths: Iterable[Path], kind: str = "photo", batch_size: int = 32,
                known: Callable[[list[str]], set[str]] | None = None, encode_chips: bool = False,
                ) -> Iterator[list]:
        """As `FacePipeline.process`: batches of results, in input order."""
        pool = self._executor()
        seen: set[str] | None = set() if known is not None else None
        in_flight: deque[tuple[list, list[PendingImage], Future | None]] = deque()
        try:
            for batch in chunks(paths, batch_size):
                slots, pending = intake(batch, known, seen)
                fut = pool.submit(_compute, pending, kind, encode_chips) if pending else None
                in_flight.append((slots, pending, fut))
                while len(in_flight) > 2 * self.workers:  # keep every worker fed, memory bounded
                    yield self._collect(in_flight.popleft())
            while in_flight:
                yield self._collect(in_flight.popleft())
        finally:
            for _, _, fut in in_flight:
                if fut is not None:
                    fut.cancel()

    def process_one(self, path: Path, kind: str = "photo"):
        from forensics.intake import PipelineFailure

        (res,) = next(self.process([Path(path)], kind))
        if isinstance(res, PipelineFailure):
            raise res.error
        return res

    def _collect(self, item: tuple[list, list[PendingImage], Future | None]) -> list:
        slots, pending, fut = item
        computed = self._result(fut) if fut is not None else []
        for res in computed:
            emb = getattr(res, "embedding", None)
            if emb is not None and emb.embedder != self.embedder_info:
                raise ForensicsError(f"a worker's embedder ({emb.embedder.key.slug}) is not the expected one "
                                     f"({self.embedder_info.key.slug}): its weights file changed during the run?")
        return merge(slots, pending, computed)

    @staticmethod
    def _result(fut: Future):
        try:
            return fut.result()
        except BrokenProcessPool:
            raise ForensicsError(
                "a worker process stopped unexpectedly (out of memory?); everything committed before is "
                "kept: run the same command again to continue (enrolled files are skipped as duplicates), "
                "or use --workers 0 to work in one process") from None

    def close(self, wait: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ParallelPipeline:
        return self

    def __exit__(self, exc_type, *_) -> None:
        # after an error or Ctrl-C, do not wait for batches no one will read
        self.close(wait=exc_type is None)


def make_pipeline(embedder: str = "dlib-resnet", weights: Path | None = None, select: str = "largest",
                  workers: int = 0):
    """A `ParallelPipeline` with `workers` processes, or (0) a `FacePipeline` in this process."""
    spec = PipelineSpec(embedder, str(weights) if weights else None, select)
    return ParallelPipeline(spec, workers).start() if workers > 0 else spec.build()
