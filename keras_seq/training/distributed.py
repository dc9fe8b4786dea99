"""Data-parallel training on jax through `keras.distribution`: several devices, several processes.

`TrainSpec(devices=N)` (`fit `devices` N|all`, recipe `train.devices`)
trains one model with `keras.distribution.DataParallel`: the variables are
replicated on every device, each global batch of `batch_size` windows is
split over them, and the gradients are averaged, so the updates are those of
one device with the same batches (to float rounding). The processes of a
multi-host job are joined by `jax.distributed` (`Cluster`, or Keras's
`KERAS_DISTRIBUTION_*` environment variables); every process reads the same
data and draws the same batches, feeds its share of each batch, and only
process 0 writes the run folder.

On a CPU, `backend.request_host_devices` asks XLA for N host devices
(`--xla_force_host_platform_device_count`), which works only before jax is
imported; on a GPU host the flag changes nothing and the GPUs are used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys

from keras_seq.errors import KerasSeqError

# Keras's own names (keras.distribution.initialize reads them too)
ENVIRONMENT = {"coordinator": "KERAS_DISTRIBUTION_JOB_ADDRESSES", "num_processes": "KERAS_DISTRIBUTION_NUM_PROCESSES",
               "process_id": "KERAS_DISTRIBUTION_PROCESS_ID"}


def check_devices(devices) -> None:
    """Refuse a `devices` option that is neither a positive integer nor "all" (one line)."""
    if devices == "all":
        return
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        raise KerasSeqError(f"`devices` must be a positive integer or \"all\". Received: devices={devices!r}")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The processes of a multi-host job, joined through `jax.distributed.initialize`.

    Args:
        coordinator: str or None. "host:port" of process 0's coordinator
            service. Defaults to `$KERAS_DISTRIBUTION_JOB_ADDRESSES` (its
            first address).
        num_processes: int or None. Processes in the job. Defaults to
            `$KERAS_DISTRIBUTION_NUM_PROCESSES`.
        process_id: int or None. This process's index, 0 to
            `num_processes - 1`. Defaults to `$KERAS_DISTRIBUTION_PROCESS_ID`.
    """

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    @classmethod
    def from_environment(cls, **given) -> "Cluster | None":
        """The cluster of the options given, completed from the environment; None where neither names one."""
        values = {}
        for name, variable in ENVIRONMENT.items():
            value = given.get(name)
            if value is None and os.environ.get(variable):
                value = os.environ[variable]
                if name != "coordinator":
                    if not re.fullmatch(r"\d+", value.strip()):
                        raise KerasSeqError(f"${variable} must be a whole number. Received: {value!r}")
                    value = int(value)
            values[name] = value
        if all(v is None for v in values.values()):
            return None
        cluster = cls(**values)
        cluster.check()
        return cluster

    @property
    def address(self) -> str:
        """The coordinator's host:port (the first of a list of job addresses)."""
        return self.coordinator.split(",")[0].strip()

    def check(self) -> None:
        """Refuse an incomplete or inconsistent cluster (one line)."""
        missing = [f"--{name.replace('_', '-')} (or ${ENVIRONMENT[name]})" for name, value in
                   dataclasses.asdict(self).items() if value is None]
        if missing:
            raise KerasSeqError(f"a multi-process job needs {', '.join(missing)} too: give the coordinator's "
                                "host:port, the number of processes and this process's id.")
        if not re.fullmatch(r"[\w.\-\[\]:]+:\d{1,5}", self.address):
            raise KerasSeqError(f"the coordinator must be host:port (e.g. 10.0.0.1:1234). Received: {self.coordinator!r}")
        if self.num_processes < 1 or not 0 <= self.process_id < self.num_processes:
            raise KerasSeqError(f"the process id must be from 0 to {self.num_processes - 1} for {self.num_processes} "
                                f"processes. Received: process_id={self.process_id}")

    def join(self) -> None:
        """Join the job (`keras.distribution.initialize`, which calls `jax.distributed.initialize`)."""
        import keras

        if keras.backend.backend() != "jax":
            raise KerasSeqError(f"a multi-process job runs on the jax backend; this one uses "
                                f"{keras.backend.backend()}. Use `backend` jax.")
        from keras_seq.backend import tensorflow_left_unloaded

        try:
            with tensorflow_left_unloaded():  # its seeding would import TensorFlow only to seed it
                keras.distribution.initialize(self.address, self.num_processes, self.process_id)
        except RuntimeError as exc:
            if "should only be called once" in str(exc):
                return  # already joined, by an earlier fit of this process
            raise KerasSeqError(f"could not join the job at {self.coordinator} as process {self.process_id}: "
                                f"{str(exc).splitlines()[0][:200]}") from None


@dataclasses.dataclass(frozen=True)
class Parallel:
    """Where a data-parallel fit runs: its device count, and this process's place among the processes."""

    devices: int
    process_index: int = 0
    process_count: int = 1

    def usable(self, size: int) -> int:
        """Windows of a batch of `size` that are trained on: a multiple of the device count."""
        return size - size % self.devices

    def share(self, batch):
        """This process's rows of a global batch (a nested structure of arrays, batch first)."""
        if self.process_count == 1:
            return batch
        import jax

        def part(array):
            step = len(array) // self.process_count
            return array[self.process_index * step : (self.process_index + 1) * step]

        return jax.tree.map(part, batch)


def process_writes() -> bool:
    """Whether this process is the one that writes (always, but in a multi-process job's processes 1, 2, ...)."""
    jax = sys.modules.get("jax")
    if jax is None or sys.modules["keras"].backend.backend() != "jax":
        return True
    return jax.process_index() == 0


def current_parallel() -> Parallel | None:
    """The data-parallel fit in force (`data_parallel`'s), or None."""
    return _ACTIVE[-1] if _ACTIVE else None


_ACTIVE: list[Parallel] = []


@contextlib.contextmanager
def data_parallel(devices, batch_size: int):
    """Build and train a block's models under `keras.distribution.DataParallel` over `devices` devices.

    Yields a `Parallel`, or None for one device (nothing changes). The block
    must build the model too: its variables are laid out when created.

    Raises:
        KerasSeqError: not the jax backend, fewer devices than asked for, or a
            batch size that the devices do not divide.
    """
    import keras

    if devices == 1 and keras.backend.backend() != "jax":
        yield None
        return
    if keras.backend.backend() != "jax":
        raise KerasSeqError(f"data-parallel training (devices={devices}) runs on the jax backend; this run uses "
                            f"{keras.backend.backend()}. Use `backend` jax, or `devices` 1.")
    import jax

    available = keras.distribution.list_devices()
    count = len(available) if devices == "all" else devices
    if count == 1 and jax.process_count() == 1:
        yield None
        return
    if count > len(available):
        hint = ("start a new process: keras-seq asks XLA for host devices only before jax is imported"
                if "cpu" in available[0] else "use `devices` all, or fewer")
        raise KerasSeqError(f"`devices` {devices} asks for {count} devices, but jax sees {len(available)} "
                            f"({', '.join(available[:4])}{', ...' if len(available) > 4 else ''}); {hint}.")
    if count < len(available) and jax.process_count() > 1:
        raise KerasSeqError(f"a multi-process job trains on all {len(available)} devices of its processes; "
                            f"`devices` {devices} would leave some out. Use `devices` all.")
    if batch_size % count:
        raise KerasSeqError(f"batch size {batch_size} does not split evenly over {count} devices. Give a batch size "
                            f"that is a multiple of {count} (e.g. `batch_size` {batch_size + count - batch_size % count}).")
    parallel = Parallel(count, jax.process_index(), jax.process_count())
    previous = keras.distribution.distribution()
    # Each process feeds its own share of every batch (`Parallel.share`): Keras's sharding is for tf.data.
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=available[:count],
                                                                        auto_shard_dataset=False))
    _ACTIVE.append(parallel)
    try:
        yield parallel
    finally:
        _ACTIVE.pop()
        keras.distribution.set_distribution(previous)
