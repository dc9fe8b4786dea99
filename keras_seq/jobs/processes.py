"""A keras-seq call in a new Python process on the Keras backend it needs: a search's workers, an export on
TensorFlow for a caller whose Keras runs on jax or torch.

`start(function, args, backend)` runs `python -m keras_seq.jobs.processes`
with `KERAS_BACKEND` set and `(function, args)` pickled on its stdin (a
function pickles as its module and name, so the child imports what it runs
and this module imports no workflow). The child runs the call under the
stop-signal handlers and ends 0, 130 (a signal stopped it: `RunInterrupted`)
or 1 with the library's one-line error on stderr (`child_error`). With
`watch_parent` the child also stops once the process that started it is
gone, even one killed outright. `wait` waits for children and passes this
process's SIGINT or SIGTERM on to each of them once.
"""

from __future__ import annotations

import collections
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

from keras_seq.errors import KerasSeqError, RunInterrupted

INTERRUPTED = 130  # a child's exit status when a signal stopped its call
KEPT_LINES = 20  # the last lines of a child's stderr kept (read as they come, so a chatty child never blocks)


def start(function, args: tuple, backend: str, *, own_session: bool = False, watch_parent: bool = False):
    """A child process running `function(*args)` on `backend` (a `subprocess.Popen`; the last lines of its
    stderr in `child.tail`).

    `own_session`: a Ctrl-C at the terminal reaches the child only through
    this process (`wait` passes it on).
    """
    command = [sys.executable, "-m", "keras_seq.jobs.processes", *([str(os.getpid())] if watch_parent else [])]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**os.environ, "KERAS_BACKEND": backend}, start_new_session=own_session)
    child.tail = collections.deque(maxlen=KEPT_LINES)
    child.reader = threading.Thread(target=lambda: child.tail.extend(child.stderr), daemon=True)
    child.reader.start()
    child.stdin.write(pickle.dumps((function, tuple(args))))
    child.stdin.close()
    return child


def wait(children: list) -> list[str]:
    """Wait for every child, passing a signal this process receives on to each once; each one's error line
    (empty for a child that ended well).

    Raises:
        RunInterrupted: a signal stopped this process or a child.
    """
    from keras_seq.jobs.stop import STOP, stop_signals

    def forward():
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)

    with stop_signals(on_stop=forward):
        while any(child.poll() is None for child in children):
            time.sleep(0.2)
    errors = [child_error(child) for child in children]
    if STOP.requested or any(child.returncode == INTERRUPTED for child in children):
        raise RunInterrupted("stopped by a signal")
    return errors


def child_error(child) -> str:
    """A finished child's error in one line, without the `Error: ` it is printed with ("" where it ended well)."""
    if not child.returncode:
        return ""
    child.reader.join(timeout=5)
    lines = [line.decode("utf-8", "replace").strip() for line in child.tail if line.strip()]
    return lines[-1].removeprefix("Error: ") if lines else f"exit status {child.returncode}"


def _main(argv: list[str]) -> int:
    """The child: the pickled call on stdin (written by `start` in its parent), run under the stop signals."""
    from keras_seq.jobs.stop import stop_signals

    function, args = pickle.loads(sys.stdin.buffer.read())
    if argv:
        _end_with_parent(int(argv[0]))
    try:
        with stop_signals():
            function(*args)
    except RunInterrupted:
        return INTERRUPTED
    except KerasSeqError as exc:
        print(f"Error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    return 0


def _end_with_parent(parent: int) -> None:
    """Stop the call (as on Ctrl-C) once the parent is gone, even one killed outright: poll the parent's pid,
    which changes when the process is adopted by another."""

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # stop_signals: the call ends at its next safe point
        time.sleep(30)
        os._exit(INTERRUPTED)  # and if it did not, the child ends anyway

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
