"""The run folder's format, owned here: its file names, staging, JSON, manifest and config reading.

A run folder `<out>/<arch>-<UTC timestamp>/` holds `model.keras`,
`config.json`, `history.csv`, `loss.png`, `metrics.json`, `forecast.png`,
`optimizer.npz` and `manifest.json` (the sha256 of every other file). Every folder keras-seq
writes (runs, comparisons, recipe runs, evaluations, exports) is staged
under a temporary name and renamed into place when complete
(`staged_folder`). Everything that reads a run folder goes through
`read_run_config`, which checks the manifest, and `specs_from_config`, which
checks every recorded option as the CLI would. `keras_seq.runs.run` fits and
evaluates into these folders; `export` and `predict` read them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from keras_seq.config.options import from_record, values_of
from keras_seq.data.windows import Scaling
from keras_seq.errors import FolderWarning, KerasSeqError, first_line
from keras_seq.safety import artifact_sha256, inside, lock_folder, read_text_bounded, refuse_symlink

CONFIG_FILE = "config.json"
MODEL_FILE = "model.keras"
MANIFEST_FILE = "manifest.json"
CHECKPOINT_FILE = "checkpoint.npz"
OPTIMIZER_FILE = "optimizer.npz"  # a finished fit's optimizer state, where `update` goes on from


# === Names and staging ===


def utc_stamp(now: datetime.datetime | None = None) -> str:
    """A UTC timestamp for folder names, e.g. `20230210T153000Z`."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def run_name(arch: str, now: datetime.datetime | None = None) -> str:
    """`<arch>-<UTC timestamp>`, e.g. `lstm-20230210T153000Z`."""
    return f"{arch}-{utc_stamp(now)}"


@dataclasses.dataclass
class StagedFolder:
    """A folder being written (`path`) and, once complete, where it landed (`final`)."""

    path: Path
    final: Path | None = None


@contextlib.contextmanager
def staged_folder(parent: str | os.PathLike, name: str, replace: bool = False, exclusive: bool = False):
    """Write a folder under a temporary name, then rename it into place.

    If the body raises (or is interrupted), the temporary folder is removed,
    so a reader never sees a half-written run. By default an existing folder
    is never overwritten: a taken name gets a suffix `-2`, `-3`, ... With
    `replace=True` the new folder takes the name, and the old one is removed
    only once the new one is in place. With `exclusive=True` the name is
    claimed atomically, and a folder of that name that appeared meanwhile
    (another process) is an error, never replaced.

    Yields:
        A `StagedFolder`; its `final` is set when the block completes.
    """
    parent = Path(parent)
    if parent.exists() and not parent.is_dir():
        raise KerasSeqError(f"output folder {parent} is a file. Give `out` a folder.")
    created = [p for p in (parent, *parent.parents) if not p.exists()]  # removed again if the block fails
    _name_leftovers(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = StagedFolder(Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent)))
        umask = os.umask(0)
        os.umask(umask)
        stage.path.chmod(0o777 & ~umask)  # mkdtemp makes it private; a run folder is not
        held = lock_folder(stage.path)  # while it is written: how the next command tells it from a killed one's leftover
    except OSError as exc:
        raise KerasSeqError(f"cannot write to output folder {parent}: {exc.strerror or exc}.") from None
    try:
        yield stage
        if replace:
            stage.final = _replace(stage.path, parent / name)
        else:
            stage.final = _publish(stage.path, parent, name, attempts=1 if exclusive else 999)
    except BaseException:
        shutil.rmtree(stage.path, ignore_errors=True)
        for folder in created:  # innermost first; a folder another run wrote into stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        if held is not None:  # always, for a folder just made
            os.close(held)


def _name_leftovers(parent: Path) -> None:
    """Warn about each staged folder in `parent` that no process holds: a killed command left it."""
    import warnings

    if not parent.is_dir():
        return
    for folder in sorted(parent.glob(".*.partial")):
        if folder.is_symlink() or not folder.is_dir():
            continue
        try:
            descriptor = lock_folder(folder)
        except OSError:
            continue
        if descriptor is None:
            continue  # another command is writing it now
        os.close(descriptor)
        hint = (f"resume it with `keras-seq fit --resume {folder}`, or delete it" if (folder / CHECKPOINT_FILE).is_file()
                else f"nothing can resume it: delete it (rm -r '{folder}')")
        warnings.warn(f"{folder} was left by a keras-seq command that was killed; {hint}.", FolderWarning, stacklevel=4)


def _replace(staged: Path, target: Path) -> Path:
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
    try:
        os.replace(staged, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _publish(staged: Path, parent: Path, name: str, attempts: int = 999) -> Path:
    for attempt in range(1, attempts + 1):
        target = parent / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            target.mkdir()  # atomic claim of the name: fails if it exists
        except FileExistsError:
            continue
        os.replace(staged, target)  # replaces the empty folder just claimed
        return target
    if attempts == 1:
        raise KerasSeqError(f"{parent / name} appeared while keras-seq was writing it (another command?). Nothing was replaced.")
    raise KerasSeqError(f"could not find a free run folder name for {name} in {parent}.")


def write_json(path: Path, payload: dict) -> None:
    """Strict JSON: a non-finite number is written as `null`, and its place listed under `null_reasons`."""
    reasons = {}
    clean = _finite(json.loads(json.dumps(payload, default=_json_default)), "", reasons)
    if reasons:
        clean = {**clean, "null_reasons": {**clean.get("null_reasons", {}), **reasons}}
    path.write_text(json.dumps(clean, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _finite(value, where: str, reasons: dict):
    if isinstance(value, float) and not np.isfinite(value):
        reasons[where] = f"not a finite number ({value})"
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), reasons) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v, f"{where}[{i}]", reasons) for i, v in enumerate(value)]
    return value


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_history(path: Path, history: dict) -> None:
    """history.csv: `epoch,loss,val_loss`, epochs counted from 1."""
    keys = list(history)
    lines = [",".join(["epoch", *keys])]
    for epoch, values in enumerate(zip(*(history[k] for k in keys)), start=1):
        lines.append(",".join([str(epoch), *(repr(float(v)) for v in values)]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_history(path: Path) -> dict:
    """history.csv as `{column: [values]}`, `epoch` included; a value that is not a number is NaN, a missing or
    linked file no columns."""
    import csv
    import io

    if not path.is_file() or path.is_symlink():
        return {}
    rows = list(csv.DictReader(io.StringIO(read_text_bounded(path))))
    return {key: [_number_or_nan(row.get(key)) for row in rows] for key in (rows[0] if rows else {})}


def _number_or_nan(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


# === Reading and checking a run folder ===


def read_json(path: Path) -> dict:
    """A JSON file of a run folder (at most 16 MiB), or one line saying it is not valid JSON."""
    try:
        return json.loads(read_text_bounded(path))
    except (ValueError, UnicodeDecodeError) as exc:
        raise KerasSeqError(f"{path} is not valid JSON ({exc}). Re-run `keras-seq fit`.") from None


def write_manifest(folder: Path) -> None:
    """`manifest.json`: the sha256 of every file in `folder` (written last)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)
    write_json(folder / MANIFEST_FILE, {"sha256": {p.relative_to(folder).as_posix(): artifact_sha256(p) for p in files}})


def check_manifest(run_dir: Path) -> None:
    """Refuse a run folder without a manifest, or whose files differ from it.

    The manifest must list `config.json` and `model.keras`, and each name in
    it must be a plain relative name inside the folder, never through a
    symlink. It guards against accidents and careless copies; whoever can
    write the folder can also write a matching manifest (SECURITY.md).
    """
    manifest = run_dir / MANIFEST_FILE
    refuse_symlink(manifest)
    if not manifest.is_file():
        raise KerasSeqError(
            f"{run_dir} has no {MANIFEST_FILE}, so its files cannot be checked: the folder may have been changed. "
            "Restore the manifest from the original run folder or re-run `keras-seq fit`."
        )
    try:
        recorded = json.loads(read_text_bounded(manifest))["sha256"]
        valid = isinstance(recorded, dict) and all(isinstance(v, str) for v in recorded.values())
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        valid = False
    if not valid:
        raise KerasSeqError(f"{manifest} is not a keras-seq manifest. Re-run `keras-seq fit`.")
    unlisted = [name for name in (CONFIG_FILE, MODEL_FILE) if name not in recorded]
    if unlisted:
        raise KerasSeqError(
            f"{manifest} does not list {unlisted[0]}, so it cannot vouch for it: the folder may have been changed. "
            "Re-run `keras-seq fit`."
        )
    for name in recorded:
        inside(run_dir, name, "file in its manifest")  # every name, before any file is read
    for name, digest in recorded.items():
        path = run_dir / name
        if not path.is_file():
            raise KerasSeqError(f"{path} is missing: the run folder is incomplete. Restore it or re-run `keras-seq fit`.")
        if artifact_sha256(path) != digest:
            raise KerasSeqError(
                f"{path} does not match the sha256 in {MANIFEST_FILE}: it changed after the run was written. "
                "Restore it or re-run `keras-seq fit`."
            )


@dataclasses.dataclass(frozen=True)
class ModelIO:
    """What a run's model reads and returns: the first fields of its model card, and all that `predict` needs.

    `features` are the input columns in order; `data` is the training data's
    options (a `DataSpec`, recorded in a card as a table);
    `series_vocabulary` the series the model knows (None: it reads windows
    alone); `quantiles` the levels along its output (empty: a point model);
    `pad` whether it takes NaN (`WindowSpec.pad`, before a series' first
    value; `DataSpec.missing` mask, anywhere), so a series shorter than its
    window is forecast.
    """

    window: int
    horizon: int
    target_kind: str
    features: list
    target: str
    data: object
    series_vocabulary: list | None
    quantiles: list
    pad: bool = False

    @classmethod
    def of_specs(cls, data, windows, vocabulary: list | None, levels) -> ModelIO:
        """From a run's data and window specs, its series vocabulary and its output levels."""
        return cls(windows.window, windows.horizon, windows.target_kind, list(data.input_columns(windows.horizon)),
                   data.target, data, vocabulary, list(levels), bool(windows.pad or data.missing == "mask"))

    @classmethod
    def of_config(cls, config: dict) -> ModelIO:
        """From a run's config.json (read by `read_run_config`)."""
        data, windows = specs_from_config(config, None, ("data", "windows"))
        return cls.of_specs(data, windows, series_vocabulary_of(config, CONFIG_FILE),
                            quantiles_of(config.get("model"), CONFIG_FILE))

    @classmethod
    def of_card(cls, card: dict, where) -> ModelIO:
        """From a model card (`card_fields`, someone else's file now): every field checked, or `KerasSeqError`."""
        plain = [field.name for field in dataclasses.fields(cls)[:5]]  # window .. target, recorded as they are
        try:
            io = cls(**{name: card[name] for name in plain}, data=None,
                     series_vocabulary=series_vocabulary_of(card, where), quantiles=list(quantiles_of(card.get("model"), where)),
                     pad=card.get("pad", False))  # cards before `pad` have none
            valid = io.plain_fields_valid() and isinstance(io.pad, bool)
            data = from_record("data", card["data"], target=io.target, cache_dir=None) if valid else None
        except (KeyError, TypeError, AttributeError, ValueError, KerasSeqError):
            valid = False
        if not valid:
            raise KerasSeqError(f"the model card ({where}) does not describe the model's inputs and outputs. "
                                "Export the run again.")
        return dataclasses.replace(io, data=data)

    def plain_fields_valid(self) -> bool:
        """Whether the window, horizon, kind, features and target are of a keras-seq model (and of bounded size)."""
        names = [*self.features, self.target] if isinstance(self.features, list) else []
        return (all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in (self.window, self.horizon))
                and self.target_kind in ("next", "sequence") and isinstance(self.target, str)
                and isinstance(self.features, list) and len(self.features) <= 10_000
                and all(isinstance(f, str) and len(f) <= 200 for f in names))

    def card_fields(self) -> dict:
        """The fields as a model card records them (the data's options as a table, without the cache folder of
        the machine that trained it)."""
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return fields | {"data": values_of(dataclasses.replace(self.data, cache_dir=None))}


def quantiles_of(model: dict | None, where) -> tuple[float, ...]:
    """The levels along a model's output (a run's `model` options or a card's: its quantiles, or its conformal
    intervals' bounds and median), empty for a point model.

    Raises:
        KerasSeqError: they are not levels in (0, 1) with the median among them.
    """
    from keras_seq.models.spec import checked_coverages, checked_quantiles, output_levels

    model = model if isinstance(model, dict) else {}
    levels, coverages = model.get("quantiles"), model.get("conformal")
    try:
        quantiles = checked_quantiles(levels)
        checked = output_levels(quantiles, checked_coverages(coverages))
    except KerasSeqError:
        checked = None
    if checked is None or (levels and list(quantiles) != [float(v) for v in levels]):
        raise KerasSeqError(f"{where} records quantile levels {levels!r} or conformal coverages {coverages!r} that no "
                            "keras-seq model has. Fit or export the run again.")
    return checked


def series_vocabulary_of(record: dict, where) -> list | None:
    """The names of the series a model knows, index k+1 for the k-th (None: the model reads windows alone).

    Raises:
        KerasSeqError: `record` (a run's config or a model card) holds one
            that is not a list of distinct names.
    """
    names = record.get("series_vocabulary")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise KerasSeqError(f"{where} has a 'series_vocabulary' that is not a list of distinct series names. "
                            "Fit or export the run again.")
    return names


LATEST = "latest"


def resolve_latest(path: str | Path) -> Path:
    """`path`, or for `latest` (`saved_models/latest`, `<out>/latest`) the newest complete run folder there; a
    path through it (`saved_models/latest/export/model.onnx`) continues from that folder.

    A bare `latest` looks in `saved_models`, `fit`'s default `--out`. A real
    folder named `latest` is kept as it is. Only plain folders (no links)
    with a `config.json` whose status is `complete` count; the newest is the
    one created last. A symlink named `latest` is not followed: the newest
    real run folder beside it is taken instead.

    Raises:
        KerasSeqError: there is no complete run folder there.
    """
    path = Path(path)
    if path.name != LATEST and LATEST in path.parts[:-1]:  # a path through `latest`
        at = path.parts.index(LATEST)
        head = Path(*path.parts[:at + 1])
        return resolve_latest(head).joinpath(*path.parts[at + 1:])
    if path.name != LATEST or (path.exists() and not path.is_symlink()):
        return path  # a real folder named `latest` is itself; a link of that name is never followed
    parent = path.parent if str(path.parent) != "." else Path("saved_models")
    runs = []
    for folder in sorted(parent.iterdir()) if parent.is_dir() else []:
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        config_path = folder / CONFIG_FILE
        if not config_path.is_file() or config_path.is_symlink():
            continue
        try:
            config = read_json(config_path)
        except KerasSeqError:
            continue
        if isinstance(config, dict) and config.get("status", "complete") == "complete":
            runs.append((str(config.get("created", "")), folder.name, folder))
    if not runs:
        raise KerasSeqError(f"no complete run folder in {parent} for '{path}'. Give a run folder, or fit one with "
                            f"`keras-seq fit --out {parent}`.")
    return max(runs)[2]


def check_run_folder(run_dir: str | Path) -> Path:
    """`run_dir` as a Path (`latest`: see `resolve_latest`), refused unless it is an existing folder."""
    run_dir = resolve_latest(run_dir)
    if run_dir.is_file():
        raise KerasSeqError(f"{run_dir} is a file, not a run folder. Give a folder written by `keras-seq fit`.")
    if not run_dir.is_dir():
        raise KerasSeqError(f"run folder not found: {run_dir}. Give a folder written by `keras-seq fit`.")
    return run_dir


def read_run_config(run_dir: str | Path) -> dict:
    """The `config.json` of a run folder.

    Raises:
        KerasSeqError: the folder, its config or its model is missing or
            unreadable, or a file differs from the folder's manifest.
    """
    run_dir = check_run_folder(run_dir)
    for name in (CONFIG_FILE, MODEL_FILE):
        refuse_symlink(run_dir / name)
    config = read_json(run_dir / CONFIG_FILE) if (run_dir / CONFIG_FILE).is_file() else None
    if config is not None and not isinstance(config, dict):
        raise KerasSeqError(f"{run_dir / CONFIG_FILE} is not a keras-seq run config: it is not a JSON object.")
    status = (config or {}).get("status", "complete")
    if status != "complete":  # an unfinished run says so before anything else is missed
        result, train = (config.get(key) if isinstance(config.get(key), dict) else {} for key in ("result", "train"))
        epochs = f" after {result.get('epochs_run', 0)} of {train.get('epochs', '?')} epochs"
        raise KerasSeqError(
            f"{run_dir} is an unfinished run ({status}{epochs if status == 'interrupted' else ''}). "
            f"Resume it with `keras-seq fit --resume {run_dir}`, or use a complete run."
        )
    for name in (CONFIG_FILE, MODEL_FILE):
        if not (run_dir / name).is_file():
            raise KerasSeqError(f"{run_dir} is not a run folder: it has no {name}. Give a folder written by `keras-seq fit`.")
    check_manifest(run_dir)
    missing = [key for key in ("data", "windows", "model", "scaling") if not isinstance(config.get(key), dict)]
    if missing:
        raise KerasSeqError(f"{run_dir / CONFIG_FILE} is not a keras-seq run config: it has no '{missing[0]}' table.")
    return config


def specs_from_config(config: dict, where: Path | None, keys: tuple[str, ...] = ("data", "windows", "model", "train")) -> tuple:
    """The specs recorded in a run's config, each checked as the CLI checks it.

    Returns:
        One spec per key, in order: `data` -> DataSpec, `windows` ->
        WindowSpec, `model` -> ModelSpec, `train` -> TrainSpec.

    Raises:
        KerasSeqError: a recorded option is unknown or out of range.
    """
    specs = []
    for key in keys:
        section = config.get(key)
        try:
            if key == "data" and isinstance(section, dict):
                # A recorded cache folder is where that machine cached downloads: never a place to write on this one.
                section = {**section, "cache_dir": None}
            specs.append(from_record(key, section))
        except (TypeError, ValueError, AttributeError) as exc:
            raise KerasSeqError(
                f"{where / CONFIG_FILE if where else 'the run config'} records options that keras-seq cannot use in '{key}' ({first_line(exc)[:120]}). "
                "The folder may have been changed; re-run `keras-seq fit`."
            ) from None
    return tuple(specs)


def scaling_from_config(config: dict, where: Path):
    """The training split's `Scaling` recorded in a run's config.

    Raises:
        KerasSeqError: it is missing or malformed.
    """
    try:
        return Scaling.from_dict(config["scaling"])
    except (KeyError, TypeError, ValueError):
        raise KerasSeqError(
            f"{where / CONFIG_FILE} has no readable 'scaling' statistics. The folder may have been changed; "
            "re-run `keras-seq fit`."
        ) from None

