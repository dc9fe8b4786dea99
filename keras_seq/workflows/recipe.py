"""Declarative runs: a TOML recipe names the data, windows, models, training,
evaluation and export of one or more experiments.

    description = "One line shown by `keras-seq recipes`."   # required

    [data]       # source, start, end, target, features, date_column, fill, cache_dir, season,
                 # series_column, series, targets, calendar, future_features
    [windows]    # window, horizon, target_kind, splits, stride, supervision, split_dates, split_steps, pad
    [model]      # archs, units, layers, dropout, cell, allow_future_leak,
                 # transition_layers, output_layers, scaler, transform, residual, series_embedding, quantiles,
                 # distribution, conformal
    [train]      # epochs, batch_size, lr, seed, patience, steps_per_execution, jit_compile, devices
    [evaluate]   # on (splits to score), repeats, backtest, jobs (local processes; a scheduler only from the CLI)
    [export]     # formats: any of "savedmodel", "onnx", "keras" (none by default)
    [track]      # mlflow: a tracking URI (no credentials: MLFLOW_TRACKING_USERNAME/PASSWORD hold them);
                 # tensorboard: a folder for each fit's epoch losses (see `keras_seq.runs.tracking`)

A recipe may instead take a trained run on to newer rows (`keras-seq update`): an `[update]` table with `run`
(the run folder, e.g. "saved_models/latest"), and optionally `source`, `end`, `epochs` and `refit_scaling`;
the run's own options hold the rest, so no other section but `[track]` goes beside it.

    [[experiment]]          # optional, repeatable: each one a comparison
    name = "held-out"       # required in an experiment: its folder's name
    note = "Shown above its table in report.md."
    windows.target_kind = "next"   # any section key, overriding the top level

A key left out takes the CLI's default (`model.archs` defaults to
`["lstm"]`, `fit`'s arch). `--set section.key=value` overrides a key
everywhere, experiments included; the value is read as a TOML value, or as a
string if it is not one. Everything is checked before any work starts.

`run_recipe` writes `<out>/<name>-<UTC>/` with `recipe.toml` (the resolved
recipe, every default filled in: running it again repeats the run),
`run.json` (package versions, backend, each experiment's data sha256),
`report.md`, and one comparison folder per experiment (see
`keras_seq.workflows.compare`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import math
import re
import tomllib
from pathlib import Path

from keras_seq.runs.comparison import CompareSpec
from keras_seq.config.options import (BOOL, DATE, INT, NAMES, NUMBER, TEXT, compared_values, get_option, options, recipe_schema,
                                      spec_class, tunable)
from keras_seq.data.reading import label_of
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.models.spec import ModelSpec
from keras_seq.errors import KerasSeqError, has_control_characters
from keras_seq.safety import is_folder_name

SHIPPED = Path(__file__).parents[1] / "recipes"  # keras_seq/recipes/
RECIPE_FILE = "recipe.toml"


# === Schema: section -> key -> kind (the option table's sections, and a comparison's and an export's keys) ===

def schema() -> dict:
    """section -> key -> kind: the option table's sections (an arch's registered options included), a
    comparison's and an export's keys."""
    sections = recipe_schema()
    comparison = {o.name: o.kind for o in options("evaluate")}
    # The archs compared are a [model] key (the first is a fit's `arch`); the rest of a comparison is [evaluate].
    sections["model"] = {"archs": comparison.pop("archs"), **sections["model"]}
    sections["evaluate"] = comparison
    sections["export"] = {"formats": NAMES}
    return sections


TOP_KEYS = {"description": TEXT, "name": TEXT}
UPDATE_KEYS = {"run": TEXT, "source": TEXT, "end": DATE, "epochs": INT, "refit_scaling": BOOL}  # [update]
TRACK_KEYS = {"mlflow": TEXT, "tensorboard": TEXT, "report": BOOL}  # [track]: where a run also goes
EXPERIMENT_KEYS = {"name": TEXT, "note": TEXT}
DEFAULT_ARCHS = ["lstm"]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One comparison of a recipe, every option resolved."""

    name: str
    note: str
    data: DataSpec
    windows: WindowSpec
    model: ModelSpec  # size options; `arch` is the first of `compare.archs`
    train: object  # training.TrainSpec
    compare: CompareSpec
    export: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A checked recipe: where it came from and its experiments."""

    path: Path
    name: str
    description: str
    experiments: tuple[Experiment, ...]
    overrides: tuple[str, ...]
    tune: dict | None = None  # a search's `[tune]` table as TuneSpec keyword arguments (`keras-seq tune --recipe`)
    track: dict = dataclasses.field(default_factory=dict)  # the `[track]` table: mlflow, tensorboard
    update: dict | None = None  # the `[update]` table: a trained run taken on to newer rows instead of experiments


# === Finding and reading recipes ===


def shipped_recipes() -> dict[str, tuple[Path, str]]:
    """Recipes shipped with keras-seq: name -> (path, description)."""
    found = {}
    for path in sorted(SHIPPED.glob("*.toml")):
        try:
            description = tomllib.loads(path.read_text(encoding="utf-8")).get("description", "")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            description = "(not valid TOML)"
        found[path.stem] = (path, " ".join(str(description).split()))
    return found


def find_recipe(name_or_path: str) -> Path:
    """A recipe file from a path, or from the name of a shipped recipe."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise KerasSeqError(f"{path} is a folder. Give a recipe file (.toml).")
    shipped = shipped_recipes()
    stem = path.name[:-5] if path.name.endswith(".toml") else path.name
    if path.parent == Path(".") and stem in shipped:
        return shipped[stem][0]
    raise KerasSeqError(
        f"recipe not found: {name_or_path}. Give a .toml file or a shipped recipe: {', '.join(shipped)} "
        "(see `keras-seq recipes`)."
    )


def load_recipe(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, check and resolve a recipe, applying `--set` overrides.

    Raises:
        KerasSeqError: one line naming the file, the key and what was expected.
    """
    path = find_recipe(str(name_or_path))
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise KerasSeqError(f"{where}: not a UTF-8 text file. A recipe is TOML text.") from None
    except tomllib.TOMLDecodeError as exc:
        raise KerasSeqError(f"{where}: not valid TOML ({exc}).") from None
    except OSError as exc:
        raise KerasSeqError(f"{where}: cannot read it ({exc.strerror or exc}).") from None
    except RecursionError:
        raise KerasSeqError(f"{where}: its values are nested too deep to read. A recipe is a few tables of options.") from None

    _refuse_addresses(raw, where)
    _check_top(raw, where)
    parsed = [_parse_override(item, where) for item in overrides]
    for (section, key), value, _ in parsed:
        target = raw if section is None else raw.setdefault(section, {})
        target[key] = value
        for experiment in raw.get("experiment", []):
            if section is not None and key in experiment.get(section, {}):
                experiment[section][key] = value
    if parsed:
        _check_top(raw, where)

    top_sections = {section: raw.get(section, {}) for section in schema()}
    experiments_raw = raw.get("experiment") or [{"name": "main"}]
    experiments = []
    for entry in experiments_raw:
        merged = {section: {**top, **entry.get(section, {})} for section, top in top_sections.items()}
        label = f"{where}: experiment '{entry['name']}'" if raw.get("experiment") else where
        experiments.append(_resolve(entry["name"], entry.get("note", ""), merged, label))
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        raise KerasSeqError(f"{where}: two experiments are named '{_first_duplicate(names)}'. Give each a unique name.")
    return Recipe(
        path=path,
        name=raw.get("name") or path.stem,
        description=" ".join(raw["description"].split()),
        experiments=tuple(experiments),
        overrides=tuple(overrides),
        tune=_tune_of(raw, where, experiments),
        track=dict(raw.get("track", {})),
        update={key: str(value) if key == "end" else value for key, value in raw["update"].items()}
        if "update" in raw else None,
    )


def _tune_of(raw: dict, where: str, experiments: list) -> dict | None:
    """The `[tune]` table as TuneSpec keyword arguments, checked; a search tunes one experiment."""
    if "tune" not in raw:
        return None
    from keras_seq.config.search import TuneSpec

    if len(experiments) != 1:
        raise KerasSeqError(f"{where}: a recipe with [tune] searches around one set of options; it has "
                            f"{len(experiments)} experiments. Keep one (or none) and put the others in their own recipe.")
    options = parse_tune_table(raw["tune"], where)
    try:
        TuneSpec(**options)
    except KerasSeqError as exc:
        raise KerasSeqError(f"{where} [tune]: {exc}") from None
    return options


def _first_duplicate(names):
    seen = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _describe(value) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, (dict, list)) or len(repr(value)) < 40 else kind
    return f"{shown} ({kind})"


def _check_section(table, section: str, label: str) -> None:
    if not isinstance(table, dict):
        raise KerasSeqError(f"{label}: '{section}' must be a table ([{section}]). Received: {_describe(table)}")
    kinds = schema()[section]
    for key, value in table.items():
        if key not in kinds:
            raise KerasSeqError(
                f"{label}: unknown key '{section}.{key}'. Expected one of: "
                f"{', '.join(section + '.' + k for k in kinds)}."
            )
        kind = kinds[key]
        if not kind.accepts(value):
            raise KerasSeqError(f"{label}: '{section}.{key}' must be {kind.expected}. Received: {_describe(value)}")


def _refuse_addresses(raw: dict, where: str) -> None:
    """Refuse a recipe file that names a dask scheduler: connecting to one sends it the data and runs what its
    workers send back, so the address comes only from the command line (`--scheduler`, `--set`)."""
    tables = [raw, *(e for e in raw.get("experiment", []) if isinstance(e, dict))] if isinstance(raw.get("experiment", []), list) else [raw]
    for table in tables:
        evaluate = table.get("evaluate")
        if isinstance(evaluate, dict) and "scheduler" in evaluate:
            raise KerasSeqError(
                f"{where}: 'evaluate.scheduler' names a cluster to send the data to and take results from; a recipe "
                "holds options, not addresses. Remove it and give the address when you run the recipe (`scheduler`)."
            )


def _check_top(raw: dict, where: str) -> None:
    sections = tuple(schema())
    known = {**TOP_KEYS, **{s: None for s in sections}, "experiment": None, "tune": None, "track": None, "update": None}
    for key, value in raw.items():
        if key not in known:
            raise KerasSeqError(
                f"{where}: unknown key '{key}'. Expected: description, name, experiment, tune, track, or a section "
                f"({', '.join(sections)})."
            )
        if key == "track":
            _check_track(value, where)
        if key == "update":
            _check_update(raw, where)
        if key == "tune":
            if not isinstance(value, dict):
                raise KerasSeqError(f"{where}: 'tune' must be a table ([tune]). Received: {_describe(value)}")
            parse_tune_table(value, where)
        if key in TOP_KEYS and not TOP_KEYS[key].accepts(value):
            raise KerasSeqError(f"{where}: '{key}' must be {TOP_KEYS[key].expected}. Received: {_describe(value)}")
        if key in sections:
            _check_section(value, key, where)
    if "description" not in raw:
        raise KerasSeqError(f"{where}: missing 'description', a one-line summary of the recipe (a string).")
    if "name" in raw and not is_folder_name(raw["name"]):
        raise KerasSeqError(f"{where}: 'name' must be letters, digits, '-' or '_'. Received: {raw['name']!r}")
    experiments = raw.get("experiment", [])
    if not isinstance(experiments, list) or not all(isinstance(e, dict) for e in experiments):
        raise KerasSeqError(f"{where}: 'experiment' must be an array of tables ([[experiment]]).")
    for index, entry in enumerate(experiments, start=1):
        label = f"{where}: experiment {index}"
        for key, value in entry.items():
            if key in sections:
                _check_section(value, key, label)
            elif key in EXPERIMENT_KEYS:
                if not EXPERIMENT_KEYS[key].accepts(value):
                    raise KerasSeqError(f"{label}: '{key}' must be {EXPERIMENT_KEYS[key].expected}. Received: "
                                        f"{_describe(value)}")
            else:
                raise KerasSeqError(
                    f"{label}: unknown key '{key}'. Expected: name, note, or a section ({', '.join(sections)})."
                )
        if "name" not in entry:
            raise KerasSeqError(f"{label}: missing 'name', the experiment's folder name (a string).")
        if not is_folder_name(entry["name"]):
            raise KerasSeqError(f"{label}: 'name' must be letters, digits, '-' or '_'. Received: {entry['name']!r}")


def _check_update(raw: dict, where: str) -> None:
    """The `[update]` table: its keys and kinds, a `run`, and nothing beside it that the run's own options hold."""
    table = raw["update"]
    if not isinstance(table, dict):
        raise KerasSeqError(f"{where}: 'update' must be a table ([update]). Received: {_describe(table)}")
    for key, value in table.items():
        if key not in UPDATE_KEYS:
            raise KerasSeqError(f"{where}: unknown key '{key}' in [update]. Expected: {', '.join(UPDATE_KEYS)}.")
        if not UPDATE_KEYS[key].accepts(value) or (UPDATE_KEYS[key] is INT and value < 1):
            expected = "a whole number of at least 1" if UPDATE_KEYS[key] is INT else UPDATE_KEYS[key].expected
            raise KerasSeqError(f"{where}: [update] '{key}' must be {expected}. Received: {_describe(value)}")
    if "run" not in table:
        raise KerasSeqError(f"{where}: [update] needs 'run', the run folder to take on (e.g. \"saved_models/latest\").")
    beside = [key for key in raw if key not in (*TOP_KEYS, "update", "track")]
    if beside:
        raise KerasSeqError(f"{where}: [update] takes every option from its run, and the recipe also has "
                            f"'{beside[0]}'. Drop it (a recipe either updates a run or runs experiments).")


def _check_track(table, where: str) -> None:
    from keras_seq.runs.tracking import checked_uri

    if not isinstance(table, dict):
        raise KerasSeqError(f"{where}: 'track' must be a table ([track]). Received: {_describe(table)}")
    for key, value in table.items():
        if key not in TRACK_KEYS:
            raise KerasSeqError(f"{where}: unknown key 'track.{key}'. Expected: {', '.join(TRACK_KEYS)}.")
        if not TRACK_KEYS[key].accepts(value) or (isinstance(value, str) and not value.strip()):
            expected = "true or false" if TRACK_KEYS[key] is BOOL else "a non-empty string"
            raise KerasSeqError(f"{where}: 'track.{key}' must be {expected}. Received: {_describe(value)}")
    if "mlflow" in table:
        checked_uri(table["mlflow"], f"{where}: 'track.mlflow'")
    if table.get("report"):
        from keras_seq.runs.pages import require_plotly

        require_plotly()  # before any work


# === A search's [tune] table ===


def parse_tune_table(table: dict, where: str) -> dict:
    """A recipe's `[tune]` table -> TuneSpec keyword arguments (`space` only where subtables are given)."""
    settings = {o.name: o.kind for o in options("tune") if o.in_recipe}  # a search's storage: the command line's
    found, space = {}, []
    for key, value in table.items():
        if key in tunable():
            if not isinstance(value, dict):
                raise KerasSeqError(f"{where}: 'tune.{key}' must be a table ([tune.{key}]). Received: {_describe(value)}")
            space += [_tune_param(key, name, entry, f"{where}: 'tune.{key}.{name}'") for name, entry in value.items()]
        elif key in settings:
            if not settings[key].accepts(value):
                raise KerasSeqError(f"{where}: 'tune.{key}' must be {settings[key].expected}. Received: "
                                    f"{_describe(value)}")
            found[key] = value
        else:
            raise KerasSeqError(f"{where}: unknown key 'tune.{key}'. Expected {', '.join(settings)}, or a "
                                f"table of ranges and choices ({', '.join('tune.' + s for s in tunable())}).")
    if space:
        found["space"] = tuple(space)
    return found


def _tune_param(section: str, key: str, entry, label: str):
    """A list is a choice; an inline table {low, high, log} a range (a `config.search.Param`)."""
    from keras_seq.config.search import Param

    searchable = tunable()[section]
    if key not in searchable:
        raise KerasSeqError(f"{label}: not an option a trial can change. Expected one of: "
                            f"{', '.join(f'tune.{section}.{k}' for k in searchable)}.")
    kind = NAMES if key == "arch" else schema()[section][key]  # an arch choice is checked as a list of names
    expected, check = kind.expected, kind.accepts
    if isinstance(entry, list):
        if not entry:
            raise KerasSeqError(f"{label}: a choice needs one or more values.")
        for value in entry:
            if not (check([value]) if key == "arch" else check(value)):
                raise KerasSeqError(f"{label}: each choice must be {'an arch name' if key == 'arch' else expected}. "
                                    f"Received: {_describe(value)}")
        return Param(section, key, choices=tuple(entry))
    if not isinstance(entry, dict) or set(entry) - {"low", "high", "log"} or not {"low", "high"} <= set(entry):
        raise KerasSeqError(f"{label}: expected a list of choices or a range {{low = ..., high = ..., log = false}}. "
                            f"Received: {_describe(entry)}")
    if kind not in (INT, NUMBER):
        raise KerasSeqError(f"{label}: {expected} cannot be a range; give a list of choices.")
    low, high, log = entry["low"], entry["high"], entry.get("log", False)
    integer = kind is INT
    if not (check(low) and check(high)) or not isinstance(log, bool):
        raise KerasSeqError(f"{label}: low and high must be {expected}, log true or false. Received: {_describe(entry)}")
    if not low < high or (log and low <= 0):
        raise KerasSeqError(f"{label}: needs low < high{' and low > 0 on a log scale' if log else ''}. "
                            f"Received: low = {low}, high = {high}")
    return Param(section, key, low=low, high=high, log=log, integer=integer)


def _parse_override(item: str, where: str):
    """`section.key=value` -> ((section, key), value, item), the value read as TOML."""
    if has_control_characters(item):
        raise KerasSeqError(f"--set {item[:60]!r}: holds a control character (a newline?). Give one KEY=VALUE per --set, "
                            "on one line.")
    key, sep, text = item.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key:
        raise KerasSeqError(f"--set {item}: expected KEY=VALUE, e.g. --set train.epochs=5.")
    sections = schema()
    if len(parts) == 1 and parts[0] in TOP_KEYS:
        section, name = None, parts[0]
    elif len(parts) == 2 and parts[0] in sections and parts[1] in sections[parts[0]]:
        section, name = parts
    else:
        valid = ", ".join(f"{s}.<{'|'.join(keys)}>" for s, keys in sections.items())
        raise KerasSeqError(f"--set {item}: unknown key '{key}' for {where}. Expected description, name or {valid}.")
    try:
        value = tomllib.loads(f"value = {text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = text.strip()  # a bare word: a string
    kind = TOP_KEYS[name] if section is None else sections[section][name]
    if kind.reader == "list" and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]  # --set model.archs=lstm,gru
    if not kind.accepts(value):
        raise KerasSeqError(f"--set {item}: '{key}' must be {kind.expected}. Received: {_describe(value)}")
    return (section, name), value, item


def _resolve(name: str, note: str, sections: dict, label: str) -> Experiment:
    """Build the specs of one experiment; range errors name the section and the key."""

    def build(section, factory, **values):
        try:
            return factory(**values)
        except KerasSeqError as exc:
            raise KerasSeqError(f"{label} [{section}]: {recipe_text(str(exc))}") from None

    model = dict(sections["model"])
    archs = tuple(model.pop("archs", DEFAULT_ARCHS))
    evaluate = dict(sections["evaluate"])
    formats = tuple(sections["export"].get("formats", ()))
    if formats:
        from keras_seq.artifacts.export import parse_formats

        formats = build("export", lambda: parse_formats(list(formats)))

    build("model", CompareSpec, archs=archs)  # the arch names, reported under [model]
    compare = build("evaluate", CompareSpec, archs=archs, **evaluate)
    data_spec, window_spec, model_spec, train_spec = (
        build(section, spec_class(section), **values, **({"arch": archs[0]} if section == "model" else {}))
        for section, values in (("data", sections["data"]), ("windows", sections["windows"]), ("model", model),
                                ("train", sections["train"])))
    from keras_seq.runs.comparison import check_comparison

    build("model", check_comparison, windows=window_spec, model=model_spec, spec=compare, data=data_spec)
    return Experiment(name, note, data_spec, window_spec, model_spec, train_spec, compare, formats)


def recipe_text(message: str) -> str:
    """A library message as a recipe says it: each option named `` `window` `` becomes 'windows.window'."""
    def key(match):
        try:
            return f"'{get_option(match.group(1)).section}.{match.group(1)}'"
        except KerasSeqError:
            return match.group(0)

    return re.sub(r"`([a-z][a-z_]*)`", key, message)


# === Writing the resolved recipe back as TOML ===


def resolved_sections(experiment: Experiment, frame=None) -> dict:
    """Every option of an experiment, as recipe sections (None values left out)."""
    data = dataclasses.asdict(experiment.data)
    data["features"] = list(experiment.data.features or (experiment.data.target,))  # the calendar's stay in `calendar`
    if frame is not None:  # the exact range read, so that a rerun reads the same rows
        data["start"] = label_of(frame.index.min())
        data["end"] = label_of(frame.index.max())
    windows = dataclasses.asdict(experiment.windows)
    model = {"archs": list(experiment.compare.archs), **compared_values(experiment.model, experiment.compare.archs)}
    compare = dataclasses.asdict(experiment.compare)
    evaluate = {"on": list(compare["on"]), "repeats": compare["repeats"], "backtest": compare["backtest"],
                "jobs": compare["jobs"]}  # a scheduler is never written into a recipe (`_refuse_addresses`)
    sections = {
        "data": data,
        "windows": windows,
        "model": model,
        "train": dataclasses.asdict(experiment.train),
        "evaluate": evaluate,
        "export": {"formats": list(experiment.export)},
    }
    return {s: {k: v for k, v in table.items() if v is not None} for s, table in sections.items()}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def resolved_toml(recipe: Recipe, frames: dict | None = None) -> str:
    """The recipe with every default filled in, as TOML that `keras-seq run` accepts."""
    lines = [
        f"# {recipe.name}, resolved from {recipe.path}"
        + (f" with --set {' --set '.join(recipe.overrides)}" if recipe.overrides else ""),
        "# Every option is written out. Absent keys have no value: no train.patience, no data.date_column;",
        "# data.start and data.end are absent only before a run (the source's default range).",
        f"description = {_toml_value(recipe.description)}",
        f"name = {_toml_value(recipe.name)}",
    ]
    from keras_seq.runs.tracking import has_credentials

    track = {key: value for key, value in recipe.track.items()
             if value is True or (isinstance(value, str) and value and not has_credentials(value))}
    if track:  # a URI given with credentials on the command line is used, never written
        lines += ["", "[track]", *(f"{key} = {_toml_value(value)}" for key, value in track.items())]
    if recipe.update is not None:  # the run holds every other option
        return "\n".join([*lines, "", "[update]", *(f"{key} = {_toml_value(value)}"
                                                     for key, value in recipe.update.items())]) + "\n"
    for experiment in recipe.experiments:
        frame = (frames or {}).get(experiment.name)
        lines += ["", "[[experiment]]", f"name = {_toml_value(experiment.name)}"]
        if experiment.note:
            lines.append(f"note = {_toml_value(experiment.note)}")
        for section, table in resolved_sections(experiment, frame).items():
            lines.append(f"[experiment.{section}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
    return "\n".join(lines) + "\n"


# === Running ===


@dataclasses.dataclass
class RecipeResult:
    """Where a recipe run was written, its report, and each experiment's summary."""

    path: Path
    report: str
    summaries: dict  # experiment name -> comparison summary


def run_recipe(
    recipe: Recipe,
    *,
    out: str | Path = "saved_models",
    backend: str | None = None,
    verbose: str | int = 0,
    echo=None,
    jobs: int = 1,
    scheduler: str | None = None,
) -> RecipeResult:
    """Run every experiment of `recipe` into `<out>/<name>-<UTC>/`.

    Args:
        recipe: Recipe. From `load_recipe`.
        out: path. Folder that receives the recipe's run folder.
        backend: str or None. Keras backend. Defaults to `$KERAS_BACKEND`, else jax.
        verbose: "auto", 0, 1 or 2. Keras's progress output per model.
        echo: callable or None. Receives one progress line per step.
        jobs, scheduler: where the fits run, as in `runs.comparison.CompareSpec`;
            given, they replace every experiment's `[evaluate]` jobs and
            scheduler.

    Returns:
        A `RecipeResult`.

    Raises:
        KerasSeqError: stopped after some fits finished: published with them and interrupted.json.
    """
    from keras_seq.backend import use_backend
    from keras_seq.jobs.pool import Stopped

    echo, backend = echo or (lambda line: None), use_backend(backend)
    _refuse_search(recipe)
    if recipe.update is not None:
        return _run_update(recipe, backend, verbose, echo)
    fanouts, frames = _prepare(recipe, jobs, scheduler)
    from keras_seq.jobs.stop import STOP, stop_signals
    from keras_seq.runs.folder import staged_folder, utc_stamp

    started = datetime.datetime.now(datetime.timezone.utc)
    summaries, parts, kept = {}, [f"# {recipe.name}", "", recipe.description, ""], None
    with (stop_signals(), _Pools(backend) as pools, staged_folder(out, f"{recipe.name}-{utc_stamp(started)}") as stage,
          _tensorboard(recipe)):
        for experiment in recipe.experiments:
            try:
                summaries[experiment.name], part = _run_experiment(
                    stage.path, recipe, experiment, frames[experiment.name], backend, verbose, echo,
                    pools.get(fanouts[experiment.name]))
            except Stopped as exc:
                if not exc.outcomes and not summaries:
                    raise  # nothing finished: nothing is published
                kept = (exc, experiment.name)
                break
            parts.append(part)
        if kept is None:
            report = _write_run_files(stage.path, recipe, parts, frames, started, backend, summaries)
            STOP.check("the recipe run")  # a signal after the last experiment: still nothing is published
    if kept is not None:
        raise kept[0].kept_in(stage.final / kept[1]) from None
    return _logged(recipe, RecipeResult(stage.final, report, summaries), echo)


def _run_update(recipe: Recipe, backend: str, verbose, echo) -> RecipeResult:
    """A recipe's `[update]`: its run taken on to newer rows (`runs.update.update_run`); the child run beside it,
    tracked as the recipe's `[track]` asks."""
    from keras_seq.runs.update import update_run

    options = {key: value for key, value in recipe.update.items() if key != "run"}
    with _tensorboard(recipe):
        result = update_run(recipe.update["run"], **options, backend=backend, verbose=verbose)
    return _logged(recipe, RecipeResult(result.path, result.report.table(), {}), echo)


def _tensorboard(recipe: Recipe):
    """The recipe's `[track] tensorboard` block, in which its fits train."""
    from keras_seq.training.tensorboard import tensorboard

    return tensorboard(recipe.track.get("tensorboard"))


def _logged(recipe: Recipe, result: RecipeResult, echo) -> RecipeResult:
    """The recipe's `[track]`: each experiment's HTML page (`report`), and the finished run logged to MLflow (said
    to `echo`; a failure a one-line warning)."""
    from keras_seq.runs.tracking import track

    if recipe.track.get("report"):
        from keras_seq.runs.pages import report_run

        folders = [result.path / e.name for e in recipe.experiments] if recipe.update is None else [result.path]
        for folder in folders:
            echo(f"report written to {report_run(folder)}")
    if "mlflow" in recipe.track:
        track(result.path, recipe.track["mlflow"] or None, echo=echo)
    return result


def _write_run_files(folder: Path, recipe: Recipe, parts: list, frames: dict, started, backend: str,
                     summaries: dict) -> str:
    """report.md, the resolved recipe.toml and run.json of a finished recipe run; returns the report."""
    from keras_seq.runs.folder import write_json
    from keras_seq.training.loop import versions

    report = "\n".join(parts)
    (folder / "report.md").write_text(report, encoding="utf-8")
    (folder / RECIPE_FILE).write_text(resolved_toml(recipe, frames), encoding="utf-8")
    write_json(folder / "run.json", {
        "created": started.isoformat(timespec="seconds"),
        "recipe": str(recipe.path),
        "recipe_sha256": hashlib.sha256(recipe.path.read_bytes()).hexdigest(),
        "overrides": list(recipe.overrides),
        "backend": backend,
        "data_sha256": {name: summary["settings"]["data"]["sha256"] for name, summary in summaries.items()},
        "versions": versions(),
    })
    return report


def _refuse_search(recipe: Recipe) -> None:
    if recipe.tune is not None:
        raise KerasSeqError(f"{recipe.path} declares a search ([tune]): run it with `keras-seq tune --recipe "
                            f"{recipe.path}`.")


def _prepare(recipe: Recipe, jobs: int, scheduler: str | None) -> tuple[dict, dict]:
    """Where each experiment's fits run, and its rows, loaded and checked (folds, fan-out); then Keras is started.

    `jobs` and `scheduler` (the command line's) replace each experiment's own where given.
    """
    from keras_seq.runs.comparison import check_backtest, check_fanout, date_count
    from keras_seq.jobs.pool import Fanout
    from keras_seq.backend import start_keras

    given = Fanout(jobs, scheduler)
    fanouts, frames = {}, {}
    for experiment in recipe.experiments:
        fanouts[experiment.name] = experiment.compare.fanout if given.serial else given
        frame = experiment.data.load(quote=False)  # a recipe is someone else's file: its data is never quoted
        check_backtest(date_count(frame), experiment.windows, experiment.compare.backtest)
        check_fanout(fanouts[experiment.name], experiment.train)
        frames[experiment.name] = frame
    start_keras(max((e.train.devices for e in recipe.experiments if isinstance(e.train.devices, int)), default=1))
    return fanouts, frames


class _Pools(contextlib.ExitStack):
    """The worker pools of a recipe run, each opened when an experiment first needs it and closed at the end."""

    def __init__(self, backend: str):
        super().__init__()
        self.backend, self.opened = backend, {}

    def get(self, fanout):
        from keras_seq.jobs.pool import open_pool

        if fanout not in self.opened:
            self.opened[fanout] = self.enter_context(open_pool(fanout, self.backend))
        return self.opened[fanout]


def _run_experiment(folder: Path, recipe: Recipe, experiment: Experiment, frame, backend: str, verbose, echo, pool):
    """Compare (and export) one experiment into `folder/<name>`; its summary and its part of report.md."""
    from keras_seq.runs.comparison import compare_into
    from keras_seq.runs.run import RunSpecs
    from keras_seq.jobs.stop import STOP

    echo(f"experiment {experiment.name}: {', '.join(experiment.compare.archs)} "
         f"x {experiment.compare.repeats} seed(s)"
         + (f" x {experiment.compare.backtest} folds" if experiment.compare.backtest else ""))
    folder = folder / experiment.name
    folder.mkdir()
    specs = RunSpecs(experiment.data, experiment.windows, experiment.model, experiment.train, backend)
    summary, markdown = compare_into(folder, frame, specs, experiment.compare, verbose=verbose,
                                     title=f"{recipe.name}: {experiment.name}", pool=pool)
    exported = _export_runs(folder, summary, experiment, echo)
    STOP.check("the recipe run")
    body = markdown.split("\n", 1)[1].replace("\n## ", "\n### ")
    part = f"## {experiment.name}\n" + (f"\n{experiment.note}\n" if experiment.note else "") + body
    if exported:
        part += "\nExported: " + ", ".join(f"`{experiment.name}/{p}`" for p in exported) + "\n"
    return summary, part


def _export_runs(folder: Path, summary: dict, experiment: Experiment, echo) -> list[str]:
    """Export each seed's model (the last fold's, in a backtest) into its run folder's `export/`."""
    from keras_seq.artifacts.export import export_run

    if not experiment.export:
        return []
    last_fold = experiment.compare.backtest or None
    exported = []
    for run in summary["runs"]:
        if run["fold"] != last_fold:
            continue
        run_dir = folder / run["run"]
        echo(f"exporting {run['run']} as {', '.join(experiment.export)}")
        try:
            export_run(run_dir, experiment.export)  # in a new process where Keras runs on another backend
        except KerasSeqError as exc:
            raise KerasSeqError(f"exporting {run_dir} failed: {exc}") from None
        exported.append(f"{run['run']}/export")
    return exported
