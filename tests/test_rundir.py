"""keras_seq/runs/folder.py: staged folders appear whole or not at all; strict JSON; the history file."""

from __future__ import annotations

import json

import pytest

from keras_seq.errors import KerasSeqError
from keras_seq.runs.folder import staged_folder, write_history, write_json


def test_a_staged_folder_appears_only_when_complete(tmp_path):
    with staged_folder(tmp_path, "lstm-x") as stage:
        (stage.path / "model.keras").write_text("weights")
        assert list(tmp_path.iterdir()) == [stage.path] and stage.path.name.startswith(".lstm-x.")
    assert stage.final == tmp_path / "lstm-x" and (stage.final / "model.keras").read_text() == "weights"
    # A taken name is never overwritten.
    with staged_folder(tmp_path, "lstm-x") as second:
        pass
    assert second.final == tmp_path / "lstm-x-2" and (tmp_path / "lstm-x" / "model.keras").exists()


def test_a_failed_run_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_folder(tmp_path / "out" / "runs", "gru-x") as stage:
            (stage.path / "model.keras").write_text("half")
            raise RuntimeError("training failed")
    assert list(tmp_path.iterdir()) == []  # not even the folders it made for --out
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        with staged_folder(tmp_path / "kept", "gru-x"):
            raise RuntimeError("training failed")
    assert list((tmp_path / "kept").iterdir()) == []  # a folder that was there stays


def test_output_folder_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(KerasSeqError, match="output folder .*file is a file"):
        with staged_folder(tmp_path / "file", "x"):
            pass


def test_history_csv(tmp_path):
    write_history(tmp_path / "h.csv", {"loss": [0.5, 0.25], "val_loss": [0.75, 0.5]})
    assert (tmp_path / "h.csv").read_text() == "epoch,loss,val_loss\n1,0.5,0.75\n2,0.25,0.5\n"


def test_replace_mode_swaps_in_the_new_folder(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "old.txt").write_text("old")
    with staged_folder(tmp_path, "export", replace=True) as stage:
        (stage.path / "new.txt").write_text("new")
    assert stage.final == tmp_path / "export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert [p.name for p in (tmp_path / "export").iterdir()] == ["new.txt"]


def test_json_files_are_strict_with_non_finite_numbers_as_null_and_a_reason(tmp_path):
    write_json(tmp_path / "m.json", {"model": {"mape": float("inf"), "mae": 1.5}, "skill": float("nan"), "x": [1.0, -float("inf")]})
    text = (tmp_path / "m.json").read_text()
    loaded = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in strict JSON"))
    assert loaded["model"] == {"mape": None, "mae": 1.5} and loaded["skill"] is None and loaded["x"] == [1.0, None]
    assert loaded["null_reasons"] == {"model.mape": "not a finite number (inf)", "skill": "not a finite number (nan)",
                                      "x[1]": "not a finite number (-inf)"}
