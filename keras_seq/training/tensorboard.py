"""TensorBoard's event files, written here on every backend and without TensorFlow.

Inside `tensorboard(DIR)` (`--tensorboard DIR`), each fit trained in a block
`tensorboard_for(NAME)` writes its epochs' losses under `DIR/NAME/train` and
`DIR/NAME/validation` (tag `epoch_loss`, as Keras's own callback names it;
steps numbered from 1, as history.csv): `tensorboard --logdir DIR` draws them.
The files are TFRecord files of `Event` protocol buffers, encoded here.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import struct
import time
from pathlib import Path

_TENSORBOARD = contextvars.ContextVar("keras_seq_tensorboard", default=None)


@contextlib.contextmanager
def tensorboard(folder):
    """Every fit trained inside this block writes its epochs' losses as TensorBoard scalars under `folder` (None or
    "": nothing changes, so that a caller passes its option as it is)."""
    if not folder:
        yield
        return
    token = _TENSORBOARD.set(Path(folder))
    try:
        yield
    finally:
        _TENSORBOARD.reset(token)


def tensorboard_folder() -> Path | None:
    """The folder of the `tensorboard` block this code runs in, if any."""
    return _TENSORBOARD.get()


@contextlib.contextmanager
def tensorboard_for(name: str):
    """Inside `tensorboard(folder)`: the fit called `name` writes its epochs under `folder/name` (else nothing)."""
    folder = _TENSORBOARD.get()
    if folder is None:
        yield
        return
    from keras_seq.training.loop import watching_epochs

    writers = {split: EventWriter(folder / name / split) for split in ("train", "validation")}

    def watch(epoch, logs, model):
        for key, value in logs.items():
            split, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                writers[split].scalar(f"epoch_{tag}", float(value), epoch + 1)  # numbered as history.csv

    try:
        with watching_epochs(watch):
            yield
    finally:
        for writer in writers.values():
            writer.close()


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def _masked_crc(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C, rotated right by 15 bits, plus a constant."""
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key = _varint(number << 3 | wire)
    return key + (_varint(len(payload)) + payload if wire == 2 else payload)


def _event(wall_time: float, step: int, file_version: str | None = None, tag: str | None = None,
           value: float | None = None) -> bytes:
    """A tensorflow.Event protocol buffer: wall_time (1, double), step (2, int64), file_version (3) or a
    summary (5) of one Summary.Value: tag (1) and simple_value (2, float)."""
    out = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step))
    if file_version is not None:
        return out + _field(3, 2, file_version.encode())
    summary_value = _field(1, 2, tag.encode()) + _field(2, 5, struct.pack("<f", value))
    return out + _field(5, 2, _field(1, 2, summary_value))


class EventWriter:
    """One TensorBoard event file (`events.out.tfevents.<time>.<host>`) of scalars, flushed after each."""

    def __init__(self, folder: Path):
        import socket

        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"events.out.tfevents.{time.time():.0f}.{socket.gethostname()}.{os.getpid()}.keras-seq"
        self.stream = open(self.path, "xb")
        self._write(_event(time.time(), 0, file_version="brain.Event:2"))

    def _write(self, record: bytes) -> None:
        length = struct.pack("<Q", len(record))
        self.stream.write(length + struct.pack("<I", _masked_crc(length)) + record +
                          struct.pack("<I", _masked_crc(record)))
        self.stream.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._write(_event(time.time(), step, tag=tag, value=value))

    def close(self) -> None:
        self.stream.close()
