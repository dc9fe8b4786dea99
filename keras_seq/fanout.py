"""Independent fits run side by side: on local worker processes, or on a dask.distributed cluster.

A comparison, a recipe run and a backtest are lists of fits that share
nothing but their rows. `Fanout(jobs=N)` runs them on N local processes
(`concurrent.futures.ProcessPoolExecutor`, spawned, so no process forks a
running JAX or TensorFlow); `Fanout(scheduler="tcp://host:8786")` sends them
to a dask.distributed cluster (`Client.get_executor`). `Fanout()` runs them
one after another in this process, as before.

Every fit seeds itself, so where it runs changes no number. Workers compute;
only the calling process writes files: a worker returns its run folder's files
as bytes, so the workers of a cluster need no access to the output folder.

Stopping: SIGINT or SIGTERM in the calling process cancels the fits not yet
started. Local workers stop their current fit after a batch (they are told
through an event, and Ctrl-C at the terminal reaches the caller alone); a
dask cluster cannot stop a running task, so its result is dropped. Fits that
finished are kept by the caller (`Stopped.outcomes`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import signal
import threading

from keras_seq.errors import KerasSeqError, RunInterrupted

POLL_SECONDS = 0.2  # how often the caller looks for a signal while fits run elsewhere
CONNECT_SECONDS = 20  # how long to wait for a dask scheduler to answer


@dataclasses.dataclass(frozen=True)
class Fanout:
    """Where independent fits run.

    Args:
        jobs: int. Local worker processes; `1` runs every fit in this process.
            Defaults to `1`.
        scheduler: str or None. Address of a dask.distributed scheduler
            (`tcp://host:8786`); `jobs` is then ignored. Needs
            `pip install 'keras-seq[dask]'`. Defaults to None.
    """

    jobs: int = 1
    scheduler: str | None = None

    def __post_init__(self):
        if not isinstance(self.jobs, int) or isinstance(self.jobs, bool) or self.jobs < 1:
            raise KerasSeqError(f"`jobs` must be a number of worker processes of at least 1. Received: jobs={self.jobs!r}")
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or "://" not in self.scheduler):
            raise KerasSeqError(
                f"--scheduler takes a dask scheduler's address such as tcp://10.0.0.5:8786. Received: {self.scheduler!r}"
            )

    @property
    def serial(self) -> bool:
        return self.jobs == 1 and self.scheduler is None


class Stopped(KerasSeqError):
    """A fan-out ended early (a signal, or a fit's error); `outcomes` holds what finished, in task order."""

    def __init__(self, message: str, outcomes: list, interrupted: bool, total: int | None = None):
        super().__init__(message)
        self.outcomes = outcomes
        self.interrupted = interrupted
        self.total = total
        self.exit_code = 130 if interrupted else 1

    def kept_in(self, folder) -> KerasSeqError:
        """The one-line error once the finished fits are kept in `folder`: how to finish the job."""
        from keras_seq.safety import STOP

        reason = (f"{signal.Signals(STOP.signal).name} received: the comparison stopped" if self.interrupted
                  and STOP.signal is not None else str(self).rstrip("."))
        error = (RunInterrupted if self.interrupted else KerasSeqError)(
            f"{reason}. {len(self.outcomes)} of {self.total or '?'} fits finished and are kept in {folder}; "
            f"finish it with `keras-seq compare --resume {folder}`.")
        error.exit_code = self.exit_code
        return error


def run_tasks(fn, shared, tasks: list, pool, done=None) -> list:
    """`fn(shared, task)` for every task, on `pool` (None: here, one after another).

    `done(task, outcome)` is called in this process as each one finishes.

    Returns:
        The outcomes in task order.

    Raises:
        Stopped: a signal or a fit's error ended it early; it holds the
            outcomes of the fits that finished.
    """
    finished = {}

    def keep(index, outcome):
        finished[index] = outcome
        if done is not None:
            done(tasks[index], outcome)

    try:
        if pool is None:
            _run_here(fn, shared, tasks, keep)
        else:
            pool.run(fn, shared, tasks, keep)
    except KerasSeqError as exc:
        interrupted = isinstance(exc, RunInterrupted)
        raise Stopped(str(exc), [finished[i] for i in sorted(finished)], interrupted) from None
    return [finished[i] for i in range(len(tasks))]


def _run_here(fn, shared, tasks, keep) -> None:
    from keras_seq.safety import STOP

    for index, task in enumerate(tasks):
        STOP.check("the fits")  # a signal between fits (one during a fit stops it, and it raises)
        keep(index, fn(shared, task))


class Pool:
    """Workers that run fits: local processes or a dask cluster (open with `open_pool`)."""

    def __init__(self, executor, stop_workers, scatter=None, label="local workers"):
        self.executor = executor
        self.stop_workers = stop_workers  # callable: ask running fits to stop
        self.scatter = scatter or (lambda value: value)
        self.label = label

    def run(self, fn, shared, tasks: list, keep) -> None:
        """Submit every task, keep each outcome as it arrives, stop on a signal or the first error."""
        from keras_seq.safety import STOP

        shared = self.scatter(shared)
        pending = {self.executor.submit(fn, shared, task): index for index, task in enumerate(tasks)}
        failure, stopping = None, False
        while pending:
            ready, _ = concurrent.futures.wait(pending, timeout=POLL_SECONDS,
                                               return_when=concurrent.futures.FIRST_COMPLETED)
            for future in ready:
                index = pending.pop(future)
                error = None if future.cancelled() else future.exception()
                if future.cancelled() or error is not None:
                    failure = failure or _failure(error, self.label)
                    continue
                keep(index, future.result())
            if (failure is not None or STOP.requested) and not stopping:
                stopping = True
                for future in pending:
                    future.cancel()
                self.stop_workers()
        if STOP.requested:
            STOP.check("the fits")
        if failure is not None:
            raise failure


def _failure(error, label: str) -> KerasSeqError:
    """A fit's exception as keras-seq's one-line error (a bug's stays whole, for its traceback)."""
    if error is None:
        return RunInterrupted("the fits were cancelled.")
    if isinstance(error, KerasSeqError):
        return error
    if isinstance(error, concurrent.futures.process.BrokenProcessPool):
        return KerasSeqError(f"a {label} process died (out of memory, or killed): the fits stopped. "
                             "Run again with fewer --jobs.")
    raise error


def open_pool(fanout: Fanout, backend: str):
    """A context manager yielding the `Pool` of `fanout` (None when it is serial)."""
    if fanout.serial:
        return contextlib.nullcontext(None)
    if fanout.scheduler is not None:
        return _dask_pool(fanout.scheduler, backend)
    return _local_pool(fanout.jobs, backend)


@contextlib.contextmanager
def _local_pool(jobs: int, backend: str):
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # a fork of a process running JAX or TensorFlow can deadlock
    stopping = context.Event()
    executor = concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                                      initializer=_worker_start, initargs=(backend, stopping))
    try:
        yield Pool(executor, stopping.set)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _dask_pool(address: str, backend: str):
    try:
        import distributed
    except ImportError:
        raise KerasSeqError("--scheduler needs dask.distributed: pip install 'keras-seq[dask]'.") from None
    try:
        client = distributed.Client(address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise KerasSeqError(f"cannot reach the dask scheduler at {address}: {exc}. Start one with `dask scheduler` "
                            "and its workers with `dask worker ADDRESS --nthreads 1`, or check the address.") from None
    try:
        executor = client.get_executor(pure=False)
        yield Pool(executor, lambda: None, scatter=lambda value: client.scatter(value, broadcast=True),
                   label="dask worker")
    finally:
        client.close()


# === In a worker ===

_ONE_AT_A_TIME = threading.Lock()  # a dask worker may run tasks on several threads; Keras holds one global state
_STOPPING = threading.Event()


def _worker_start(backend: str, stopping) -> None:
    """A local worker process: its own process group (Ctrl-C reaches the caller alone), and a thread that stops
    the current fit when the caller sets `stopping`."""
    os.setpgid(0, 0)
    os.environ["KERAS_BACKEND"] = backend
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN if sig == signal.SIGINT else _ignore)
    threading.Thread(target=_stop_when, args=(stopping,), daemon=True).start()


def _ignore(signum, frame) -> None:
    """Between fits a stop request has nothing to stop."""


def _stop_when(stopping) -> None:
    stopping.wait()
    _STOPPING.set()
    os.kill(os.getpid(), signal.SIGTERM)  # inside a fit, training's handler stops it after the current batch


@contextlib.contextmanager
def in_worker(backend: str):
    """Enter one fit on a worker: Keras on `backend` (refused if this process imported another), one fit at a time.

    Raises RunInterrupted where the caller is stopping.
    """
    from keras_seq.backend import use_backend
    from keras_seq.fitting import start_keras

    if _STOPPING.is_set():
        raise RunInterrupted("the fits are stopping: this one was not started.")
    with _ONE_AT_A_TIME:
        use_backend(backend)
        start_keras(1)
        yield
