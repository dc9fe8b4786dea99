"""keras_seq/jobs/processes.py: a call in a new process, its one-line error, and a child that writes much to stderr."""

from __future__ import annotations

import os

from keras_seq.jobs import processes
from keras_seq.plugins import Registry


def test_a_childs_library_error_comes_back_as_its_line_and_a_chatty_child_never_blocks():
    things = Registry("thing")
    failing = processes.start(things.lookup, ("b",), "tensorflow")
    chatty = processes.start(os.write, (2, b"warning\n" * 50_000), "tensorflow")  # 400 kB: beyond a pipe's buffer
    fine = processes.start(print, ("not on stdout",), "tensorflow")
    assert processes.wait([failing, chatty, fine]) == ["unknown thing 'b'. Expected one of: .", "", ""]
    assert [child.returncode for child in (failing, chatty, fine)] == [1, 0, 0]
