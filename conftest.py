"""Doctests (README.md and the docstrings in keras_seq/) run in a temporary folder, so what they write goes there."""

import pytest


@pytest.fixture(autouse=True)
def _doctests_in_a_temporary_folder(request, tmp_path, monkeypatch):
    if isinstance(request.node, pytest.DoctestItem):
        monkeypatch.chdir(tmp_path)
