"""Versions of one model in one export folder: each `keras-seq update` of a run exported beside the ones before.

Exporting a run into an export folder that holds the export of one of its
ancestors (`keras_seq.runs.lineage`) adds the next version instead of
refusing the folder:

- `savedmodel/<name>/<N>/`: TF Serving's layout, so a server watching
  `savedmodel/<name>` serves the newest version;
- `onnx/<name>/<N>/model.onnx` and `keras/<name>/<N>/model.keras`, versioned
  the same way (version 1, the first export, keeps its `model.onnx` and
  `model.keras` at the top of the folder);
- `model_card.json` describes the newest version and lists every version
  (`model_versions`: its run, parent run, data range and each artifact's path and
  sha256); `cards/<K>.json` keeps version K's own card when a newer one
  replaces it.

Nothing of an earlier version is rewritten, so each still verifies against
the sha256 its card recorded (`check_versions`, `keras-seq summary EXPORT`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from keras_seq.artifacts import CARD_FILE
from keras_seq.errors import KerasSeqError
from keras_seq.safety import artifact_sha256, inside, is_folder_name, read_text_bounded, refuse_symlink

VERSION_ENTRIES = ("onnx", "keras", "cards")  # the folders versions 2.. add beside version 1's files
VERSIONED = {"onnx": ("onnx", "model.onnx"), "keras": ("keras", "model.keras")}  # format -> (folder, file name)
MAX_VERSIONS = 10_000


def read_card(out: Path) -> dict:
    """An export folder's model card (its newest version's)."""
    path = out / CARD_FILE
    refuse_symlink(path)
    try:
        card = json.loads(read_text_bounded(path))
    except (OSError, ValueError, UnicodeDecodeError):
        raise KerasSeqError(f"{path} is not a readable model card. Give a new `out` folder.") from None
    if not isinstance(card, dict):
        raise KerasSeqError(f"{path} is not a keras-seq model card. Give a new `out` folder.")
    return card


def versions_of(card: dict, where: Path) -> list[dict]:
    """Every version an export folder's card lists, oldest first (a card written before versions: its one version).

    Raises:
        KerasSeqError: the list is not one keras-seq writes.
    """
    versions = card.get("model_versions")
    if versions is None:
        return [version_entry(card, _savedmodel_version(card))]
    valid = isinstance(versions, list) and 0 < len(versions) <= MAX_VERSIONS and all(
        isinstance(v, dict) and isinstance(v.get("version"), int) and isinstance(v.get("run"), str)
        and isinstance(v.get("artifacts"), dict) for v in versions)
    if not valid:
        raise KerasSeqError(f"{where / CARD_FILE} lists versions keras-seq did not write. Give a new `out` folder.")
    return versions


def _savedmodel_version(card: dict) -> int:
    """The version of an export written before versions: its SavedModel's version folder, else 1."""
    path = (card.get("artifacts") or {}).get("savedmodel", {}).get("path", "")
    last = Path(str(path)).name
    return int(last) if last.isdigit() else 1


def version_entry(card: dict, version: int) -> dict:
    """A card's entry in its folder's `model_versions`: the run, its parent, its data range and its artifacts."""
    data, parent = card.get("data") or {}, card.get("parent") or {}
    return {"version": version, "run": str(card.get("run")), "parent": parent.get("run"),
            "first_date": data.get("first_date"), "last_date": data.get("last_date"),
            "artifacts": {fmt: {"path": entry.get("path"), "sha256": entry.get("sha256")}
                          for fmt, entry in (card.get("artifacts") or {}).items() if isinstance(entry, dict)}}


def ancestor_export(out: Path, config: dict, run_name: str) -> dict | None:
    """The card of the export folder `out`, where it holds the export of an ancestor of the run (`config` its
    config.json): the next version goes beside it. None where `out` holds no card.

    Raises:
        KerasSeqError: the folder's newest version is not of the run's lineage, or is the run itself.
    """
    ancestors = [entry.get("run") for entry in config.get("lineage", []) if isinstance(entry, dict)]
    if not ancestors or not (out / CARD_FILE).is_file():  # a first fit's export never adds to a folder
        return None
    card = read_card(out)
    newest = str(card.get("run"))
    if newest == run_name:
        raise KerasSeqError(f"export folder {out} already exists. Pass `overwrite` to replace it, or give `out` (it "
                            "holds this run's export as its newest version).")
    if newest not in ancestors:
        line = ", ".join(map(str, ancestors[-3:])) or "none: it is a first fit"
        raise KerasSeqError(f"export folder {out} holds {newest[:80]}'s export, which is not in {run_name}'s lineage "
                            f"(runs before it: {line}). A new version goes only into the folder of its parent's "
                            "line; give `out` a new folder, or `overwrite` to replace it.")
    return card


def version_name(card: dict, given: str | None, default: str) -> str:
    """The model name of a folder's versions: its SavedModel's (`savedmodel/<name>/<N>`), else `given`, else
    `default` (the arch).

    Raises:
        KerasSeqError: `given` names another model than the folder's.
    """
    entry = (card.get("artifacts") or {}).get("savedmodel") if isinstance(card.get("artifacts"), dict) else None
    parts = Path(str(entry.get("path", ""))).parts if isinstance(entry, dict) else ()
    name = parts[1] if len(parts) == 3 and parts[0] == "savedmodel" and is_folder_name(parts[1]) else given or default
    if given is not None and given != name:
        raise KerasSeqError(f"the folder's versions are of the model {name!r}, and `name` is {given!r}: a version "
                            "keeps its line's name. Drop `name`, or give `out` a new folder.")
    return name


def versioned_path(fmt: str, name: str, version: int) -> str:
    """Where version `version` of an artifact lies in its export folder, relative to it."""
    if fmt in VERSIONED:
        folder, file = VERSIONED[fmt]
        return f"{folder}/{name}/{version}/{file}"
    return f"savedmodel/{name}/{version}"


def publish_version(scratch: Path, out: Path, artifacts: dict, name: str, version: int, card_of) -> dict:
    """Move the artifacts written in `scratch` (`artifacts`: format -> entry with its path there) to their
    versioned places in `out`, never over a path that exists, then replace the folder's card with
    `card_of(placed entries)`; on any failure the moved artifacts are removed again and the folder is as it was.
    The new card."""
    from keras_seq.runs.folder import write_json

    targets = {fmt: out / versioned_path(fmt, name, version) for fmt in artifacts}
    taken = [target for target in targets.values() if os.path.lexists(target)]
    if taken:
        raise KerasSeqError(f"{taken[0]} exists already: version {version} of {name} was exported before. "
                            "Nothing was added; give `out` a new folder.")
    moved = []
    try:
        for fmt, entry in artifacts.items():
            targets[fmt].parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch / entry["path"], targets[fmt])
            moved.append(targets[fmt])
        card = card_of({fmt: {**entry, "path": targets[fmt].relative_to(out).as_posix()}
                        for fmt, entry in artifacts.items()})
        write_json(scratch / CARD_FILE, card)
        os.replace(scratch / CARD_FILE, out / CARD_FILE)  # the folder's card changes in one step
    except BaseException:
        for target in moved:
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        raise
    return card


def keep_card(out: Path, card: dict, version: int) -> None:
    """Keep version `version`'s own card as `cards/<version>.json` before a newer card replaces it."""
    from keras_seq.runs.folder import write_json

    (out / "cards").mkdir(exist_ok=True)
    path = out / "cards" / f"{version}.json"
    if not path.exists():
        write_json(path, card)


def check_versions(out: str | Path) -> list[str]:
    """One line per version of an export folder: its run, parent, data range, and whether every artifact still
    matches the sha256 its card recorded (a missing or changed one is named)."""
    out = Path(out)
    card = read_card(out)
    lines = []
    for entry in versions_of(card, out):
        problems = []
        for fmt, artifact in sorted(entry["artifacts"].items()):
            try:
                path = inside(out, str(artifact.get("path")), "artifact")
            except KerasSeqError:
                problems.append(f"{fmt} outside the folder")
                continue
            if not path.exists():
                problems.append(f"{fmt} missing")
            elif artifact_sha256(path) != artifact.get("sha256"):
                problems.append(f"{fmt} CHANGED")
        lines.append(f"version {entry['version']}: {entry['run'][:80]} (parent {entry.get('parent') or 'none'}), "
                     f"data {entry.get('first_date')}..{entry.get('last_date')}, "
                     f"{', '.join(sorted(entry['artifacts']))}: {'; '.join(problems) or 'sha256 ok'}")
    return lines


def remove_scratch(scratch: Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)
