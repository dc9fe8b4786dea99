"""Where an updated run comes from: its parent run, and the line of runs before it.

`keras-seq update RUN` trains a child of RUN: RUN's weights and optimizer
state, taken on to newer data. The child's `config.json` records

- `parent`: what the child was started from and how: the parent's name and
  manifest digest (which identify it), its data range, whether the scaling
  statistics were kept or fitted again (and, kept, their values), the series
  it knew;
- `lineage`: one entry per run before it, oldest first, each with its data
  range, the epochs it trained and its test MAE, so that the line of a model
  can be read from its newest run alone (`keras-seq summary RUN`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from keras_seq.data.windows import Scaling
from keras_seq.errors import KerasSeqError
from keras_seq.runs.folder import CONFIG_FILE, MANIFEST_FILE
from keras_seq.safety import artifact_sha256

MAX_LINEAGE = 10_000  # runs in a line; a config claiming more is refused (each entry is read and printed)
ENTRY_KEYS = ("run", "created", "first_date", "last_date", "epochs_run", "test_mae", "manifest_sha256")


@dataclasses.dataclass(frozen=True)
class Start:
    """What a child run starts from.

    `record` is its config's `parent` table; `lineage` the runs before it;
    `scaling` the statistics kept from the parent (None: fitted again on
    the child's training split); `known` the series the parent's model knew
    (None: it reads windows alone); `weights` and `optimizer` the parent's
    model weights and optimizer state (None where a checkpoint brings them,
    or the parent kept no optimizer state); `parent_dir` the parent's folder,
    where it can be read (its model is scored on the child's test rows).
    """

    record: dict
    lineage: tuple
    scaling: Scaling | None
    known: tuple | None
    weights: list | None = None
    optimizer: list | None = None
    parent_dir: Path | None = None

    def config_entries(self) -> dict:
        """The child's config.json entries: `parent` and `lineage`."""
        return {"parent": self.record, "lineage": list(self.lineage)}

    def vocabulary(self, trained: list) -> list:
        """The child's series: the parent's in their order (their indices kept), then the new ones with a training
        window (`trained`, `series_vocabulary` of the child's data)."""
        known = list(self.known or ())
        seen = set(known)
        return known + [name for name in trained if name not in seen]

    @classmethod
    def of_parent(cls, parent, refit_scaling: bool, weights=None, optimizer=None) -> Start:
        """The start of a child of `parent` (a `SavedRun`)."""
        config = parent.config
        data = config.get("data", {})
        known = tuple(parent.vocabulary) if parent.vocabulary is not None else None
        record = {"run": parent.path.name, "created": config.get("created"),
                  "manifest_sha256": artifact_sha256(parent.path / MANIFEST_FILE),
                  "first_date": data.get("first_date"), "last_date": data.get("last_date"),
                  "scaling": "fitted" if refit_scaling else "kept",
                  **({} if refit_scaling else {"kept_scaling": parent.scaling.to_dict()}),
                  **({"series_vocabulary": list(known)} if known is not None else {}),
                  "optimizer": "kept" if optimizer is not None else "new"}
        lineage = (*lineage_of(config, parent.path / CONFIG_FILE), entry_of(parent.path, config))
        return cls(record, lineage, None if refit_scaling else parent.scaling, known, weights, optimizer, parent.path)

    @classmethod
    def of_config(cls, config: dict, run_dir: Path) -> Start | None:
        """The start recorded in an unfinished child's config (None for a run that is not a child): how a killed
        `update` resumes. The parent is scored again only where it still sits beside the child, unchanged."""
        record = config.get("parent")
        if record is None:
            return None
        where = run_dir / CONFIG_FILE
        try:
            if not isinstance(record, dict) or record.get("scaling") not in ("kept", "fitted"):
                raise ValueError("its 'parent' table is not one keras-seq writes")
            scaling = Scaling.from_dict(record["kept_scaling"]) if record["scaling"] == "kept" else None
            known = record.get("series_vocabulary")
            if known is not None and not (isinstance(known, list) and all(isinstance(n, str) for n in known)):
                raise ValueError("its parent's series are not a list of names")
        except (KeyError, TypeError, ValueError) as exc:
            raise KerasSeqError(f"{where} cannot be resumed as an update ({str(exc)[:120]}). "
                                "Start the update again with `keras-seq update`.") from None
        return cls(record, lineage_of(config, where), scaling, tuple(known) if known is not None else None,
                   parent_dir=_parent_beside(record, run_dir))


def _parent_beside(record: dict, run_dir: Path) -> Path | None:
    """The parent's folder where it sits beside `run_dir` under its recorded name with its recorded manifest."""
    name = record.get("run")
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        return None
    folder = Path(run_dir).parent / name
    manifest = folder / MANIFEST_FILE
    if folder.is_symlink() or manifest.is_symlink() or not manifest.is_file():
        return None
    return folder if artifact_sha256(manifest) == record.get("manifest_sha256") else None


def entry_of(run_dir: Path, config: dict) -> dict:
    """A run's entry in its children's lineage: its data range, epochs and test MAE (`config` its config.json, read
    and checked)."""
    from keras_seq.runs.folder import read_json

    data, result = config.get("data", {}), config.get("result", {})
    metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").is_file() else {}
    mae = (metrics.get("model") or {}).get("mae") if isinstance(metrics, dict) else None
    return {"run": run_dir.name, "created": config.get("created"), "first_date": data.get("first_date"),
            "last_date": data.get("last_date"), "epochs_run": result.get("epochs_run"),
            "test_mae": mae if isinstance(mae, (int, float)) and not isinstance(mae, bool) else None,
            "manifest_sha256": artifact_sha256(run_dir / MANIFEST_FILE)}


def lineage_lines(run_dir: str | Path) -> list[str]:
    """What `keras-seq summary RUN` prints of a run's line: each run from the first fit to this one, with its data
    range, the epochs it trained and its test MAE.

    Raises:
        KerasSeqError: the folder is not a complete run, or its lineage is not one keras-seq wrote.
    """
    from keras_seq.evaluation.metrics import figure
    from keras_seq.runs.folder import read_run_config, resolve_latest

    run_dir = resolve_latest(run_dir)
    config = read_run_config(run_dir)
    entries = [*lineage_of(config, run_dir / CONFIG_FILE), entry_of(run_dir, config)]
    lines = [f"{run_dir.name}: {len(entries) - 1} run(s) before it" if len(entries) > 1 else
             f"{run_dir.name}: a first fit (no parent run)"]
    for depth, entry in enumerate(entries):
        mae = entry.get("test_mae")
        lines.append(f"  {'fit' if depth == 0 else 'update':<6} {str(entry['run'])[:80]:<28} data "
                     f"{entry.get('first_date')}..{entry.get('last_date')}, {_epochs(entry.get('epochs_run'))}, "
                     f"test MAE {figure(mae) if isinstance(mae, (int, float)) else 'n/a'}")
    return lines


def _epochs(count) -> str:
    return f"{count} epoch{'' if count == 1 else 's'}"


def lineage_of(config: dict, where: Path) -> tuple:
    """The runs before a run, oldest first, as its config records them (empty for a run that is no child).

    Raises:
        KerasSeqError: the record is not a list of entries keras-seq writes.
    """
    entries = config.get("lineage", [])
    valid = isinstance(entries, list) and len(entries) <= MAX_LINEAGE and all(
        isinstance(e, dict) and set(e) <= set(ENTRY_KEYS) and isinstance(e.get("run"), str)
        and all(v is None or isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in e.values())
        for e in entries)
    if not valid:
        raise KerasSeqError(f"{where} records a 'lineage' keras-seq did not write (a list of at most {MAX_LINEAGE:,} "
                            "runs, each a table of names, dates and figures). The folder may have been changed.")
    return tuple(entries)
