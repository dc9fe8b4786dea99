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
import time

from keras_seq.errors import KerasSeqError, RunInterrupted

POLL_SECONDS = 0.2  # how often the caller looks for a signal while fits run elsewhere
STOP_POLL_SECONDS = 0.1  # how often a local worker looks at the caller's stop flag
CONNECT_SECONDS = 20  # how long to wait for a dask scheduler to answer
RESULT_SECONDS = 120  # how long a finished fit's bytes may take to arrive from its dask worker


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
        from keras_seq.config.options import get_option

        get_option("jobs").checked(self.jobs)  # as a comparison's `jobs` is checked
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or "://" not in self.scheduler):
            raise KerasSeqError(
                f"`scheduler` takes a dask scheduler's address such as tcp://10.0.0.5:8786. Received: {self.scheduler!r}"
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
        from keras_seq.jobs.stop import STOP

        reason = (f"{signal.Signals(STOP.signal).name} received: the comparison stopped" if self.interrupted
                  and STOP.signal is not None else str(self).rstrip("."))
        error = (RunInterrupted if self.interrupted else KerasSeqError)(
            f"{reason}. {len(self.outcomes)} of {self.total or '?'} fits finished and are kept in {folder}; "
            f"finish it with `keras-seq compare --resume {folder}`.")
        error.exit_code = self.exit_code
        return error


def run_tasks(fn, shared, tasks: list, pool, done=None, decode=None) -> list:
    """`fn(shared, task)` for every task, on `pool` (None: here, one after another).

    On a pool, `fn` returns bytes and `decode(result, task)` (in this
    process) turns each one into the outcome, refusing anything else with a
    `KerasSeqError`. `done(task, outcome)` is called in this process as each
    one finishes.

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
            pool.run(fn, shared, tasks, keep, decode or (lambda result, task: result))
    except KerasSeqError as exc:
        interrupted = isinstance(exc, RunInterrupted)
        raise Stopped(str(exc), [finished[i] for i in sorted(finished)], interrupted) from None
    return [finished[i] for i in range(len(tasks))]


def _run_here(fn, shared, tasks, keep) -> None:
    from keras_seq.jobs.stop import STOP

    for index, task in enumerate(tasks):
        STOP.check("the fits")  # a signal between fits (one during a fit stops it, and it raises)
        keep(index, fn(shared, task))


class Pool:
    """Workers that run fits: local processes or a dask cluster (open with `open_pool`).

    Subclasses say how a fit is submitted, which have finished, and what each one gave.
    """

    def submit(self, fn, shared, task):
        raise NotImplementedError

    def ready(self, pending) -> list:
        raise NotImplementedError

    def result(self, future, stopping: bool):
        """A finished fit's bytes; None for one cancelled by this process; KerasSeqError for a failure."""
        raise NotImplementedError

    def cancel(self, futures) -> None:
        raise NotImplementedError

    def scatter(self, shared):
        return shared

    def run(self, fn, shared, tasks: list, keep, decode) -> None:
        """Submit every task, keep each decoded outcome as it arrives, stop on a signal or the first failure."""
        from keras_seq.jobs.stop import STOP

        shared = self.scatter(shared)
        pending = {self.submit(fn, shared, task): index for index, task in enumerate(tasks)}
        failure, stopping = None, False
        while pending:
            for future in self.ready(pending):
                index = pending.pop(future)
                try:
                    result = self.result(future, stopping)
                    if result is not None:
                        keep(index, decode(result, tasks[index]))
                except KerasSeqError as error:
                    failure = failure or error
            if (failure is not None or STOP.requested) and not stopping:
                stopping = True
                self.cancel(list(pending))
        if STOP.requested:
            STOP.check("the fits")
        if failure is not None:
            raise failure


class LocalPool(Pool):
    """Spawned local processes (`concurrent.futures.ProcessPoolExecutor`)."""

    def __init__(self, executor, stopping):
        self.executor, self.stopping = executor, stopping

    def submit(self, fn, shared, task):
        return self.executor.submit(fn, shared, task)

    def ready(self, pending) -> list:
        done, _ = concurrent.futures.wait(pending, timeout=POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED)
        return list(done)

    def result(self, future, stopping: bool):
        if future.cancelled():
            return None
        error = future.exception()
        if isinstance(error, concurrent.futures.process.BrokenProcessPool):
            raise KerasSeqError("a local worker process died (out of memory, or killed): the fits stopped. "
                                "Run again with fewer `jobs`.")
        if error is not None:
            raise error  # keras-seq's one line, or a bug's whole traceback
        return future.result()

    def cancel(self, futures) -> None:
        for future in futures:
            future.cancel()
        self.stopping.value = 1  # running fits stop after their current batch (each worker polls the flag)


class DaskPool(Pool):
    """A dask.distributed cluster, trusted as a whole (SECURITY.md): this client still unpickles no result.

    The client deserializes msgpack alone, so a result that is not plain bytes is never unpickled, and a
    fit that failed on its worker is never asked for its (pickled) exception: keras-seq's own fits return
    their errors inside their bytes.
    """

    def __init__(self, client):
        self.client = client

    def scatter(self, shared):
        return self.client.scatter(shared, broadcast=True)

    def submit(self, fn, shared, task):
        return self.client.submit(fn, shared, task, pure=False)

    def ready(self, pending) -> list:
        deadline = time.monotonic() + POLL_SECONDS
        while True:
            done = [future for future in pending if future.status != "pending"]
            if done or time.monotonic() > deadline:
                return done
            time.sleep(0.02)

    def result(self, future, stopping: bool):
        if future.status == "finished":
            try:
                result = future.result(timeout=RESULT_SECONDS)
            except Exception:  # noqa: BLE001 - a result this client refuses to deserialize, or one that never came
                result = None
            if not isinstance(result, bytes):
                raise KerasSeqError("a dask worker sent back something other than keras-seq's result bytes; it was "
                                    "not read. The fits stopped: check the workers of that cluster.")
            return result
        if stopping:
            return None
        if future.status == "error":
            raise KerasSeqError("a dask worker died or crashed during a fit (keras-seq's fits report their own "
                                "errors; see the worker's log): the fits stopped.")
        raise KerasSeqError(f"a dask worker was lost during a fit ({future.status}: it died, or the scheduler "
                            "dropped the fit): the fits stopped.")

    def cancel(self, futures) -> None:
        if futures:
            self.client.cancel(futures)  # a running task cannot be stopped: its result is dropped


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

    cores = os.cpu_count() or 1
    if jobs > cores:  # each worker holds its own Keras and model: more than the cores only adds memory
        import warnings

        from keras_seq.errors import RunWarning

        warnings.warn(f"jobs={jobs} is more than this machine's {cores} cores: running {cores} worker processes.",
                      RunWarning, stacklevel=3)
        jobs = cores
    context = multiprocessing.get_context("spawn")  # a fork of a process running JAX or TensorFlow can deadlock
    # A flag in shared memory without a lock, polled by each worker: a multiprocessing Event's `set` waits for
    # every process blocked in its `wait` to wake, so one worker that died (killed, out of memory) hung it forever.
    stopping = context.RawValue("b", 0)
    executor = concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                                      initializer=_worker_start, initargs=(backend, stopping))
    try:
        yield LocalPool(executor, stopping)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _dask_pool(address: str, backend: str):
    try:
        import distributed
    except ImportError:
        raise KerasSeqError("`scheduler` needs dask.distributed: pip install 'keras-seq[dask]'.") from None
    client = _connect(distributed, address)
    try:
        yield DaskPool(client)
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=CONNECT_SECONDS)


def _connect(distributed, address: str):
    """A dask client of `address` that deserializes msgpack alone, or one line within `CONNECT_SECONDS`.

    The client is made in a thread: a server that accepts the connection and never answers holds the
    handshake longer than dask's own connect timeout.
    """
    made = {}

    def connect():
        try:
            made["client"] = distributed.Client(address, timeout=f"{CONNECT_SECONDS}s", set_as_default=False,
                                                deserializers=["msgpack"])
        except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, or dask's own for a bad answer
            made["error"] = exc

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(CONNECT_SECONDS * 1.5 + 1)  # dask's own timeout first, where it holds
    if "client" in made:
        return made["client"]
    reason = f"{type(made['error']).__name__}: {made['error']}"[:200] if "error" in made else "no answer"
    raise KerasSeqError(f"cannot reach the dask scheduler at {address[:100]} within {CONNECT_SECONDS} s ({reason}). "
                        "Start one with `dask scheduler` and its workers with `dask worker ADDRESS --nthreads 1`, "
                        "or check the address.")


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
    while not stopping.value:
        time.sleep(STOP_POLL_SECONDS)
    _STOPPING.set()
    os.kill(os.getpid(), signal.SIGTERM)  # inside a fit, training's handler stops it after the current batch


@contextlib.contextmanager
def in_worker(backend: str):
    """Enter one fit on a worker: Keras on `backend` (refused if this process imported another), one fit at a time.

    Raises RunInterrupted where the caller is stopping.
    """
    from keras_seq.backend import start_keras, use_backend

    if _STOPPING.is_set():
        raise RunInterrupted("the fits are stopping: this one was not started.")
    with _ONE_AT_A_TIME:
        use_backend(backend)
        start_keras(1)
        yield
