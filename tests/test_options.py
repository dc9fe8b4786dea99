"""Options are declared once, in the option table (`keras_seq.config.options`): the spec dataclasses, the CLI, the
recipe schema, config.json and tune's search space are generated from it, and checked against it here."""

from __future__ import annotations

import ast
import dataclasses
import datetime
from pathlib import Path

import pandas as pd
import pytest

from keras_seq.cli import cli
from keras_seq.config.options import OPTIONS, SECTIONS, options, spec_class, tunable
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.errors import KerasSeqError
from keras_seq.runs.run import RunSpecs
from keras_seq.models.registry import get_arch
from keras_seq.models.spec import ModelSpec
from keras_seq.workflows.recipe import schema
from keras_seq.runs.folder import specs_from_config
from keras_seq.training.loop import TrainSpec

PACKAGE = Path(__file__).resolve().parents[1] / "keras_seq"


def fields(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(spec_class(section))]


def command_params(name: str) -> dict:
    return {param.name: param for param in cli.commands[name].params}


def test_each_spec_has_exactly_its_sections_options_and_each_recipe_section_too():
    for section in SECTIONS:
        assert fields(section) == [o.name for o in OPTIONS if o.section == section] + ["arch_options"] * (section == "model")
        expected = {o.name for o in options(section)} - {"arch"} | ({"archs"} if section == "model" else set())
        assert set(schema()[section]) == expected, section
    own = {"cell", "transition_layers", "output_layers"}  # the built-in archs' own options: registered with them
    assert own <= {o.name for o in options("model")} - set(fields("model"))
    assert ModelSpec(arch="dotrnn", transition_layers=3).transition_layers == 3
    assert fields("evaluate") == [o.name for o in options("evaluate")]  # a comparison's: CompareSpec
    assert set(schema()["evaluate"]) == set(fields("evaluate")) - {"archs"}  # archs live in [model]


def check_params(command: str, sections) -> None:
    """Every option of `sections` offered on the command line is an option of `command` with the table's flag and
    default; one not offered is not among its options."""
    params = command_params(command)
    for option in (o for o in OPTIONS if o.section in sections):  # an arch's own options join when a command runs
        if not option.on_cli:
            assert option.name not in params or option.name == "arch"  # fit's --arch is the verb's own
            continue
        param = params[option.name]
        assert param.opts[0] == option.cli_flag
        shown = False if param.is_flag and not isinstance(param.default, bool) else param.default
        if isinstance(option.default, tuple):
            number = all(isinstance(v, float) for v in option.default)
            shown = tuple(float(v) if number else v for v in shown.split(",")) if shown is not None else ()
        assert shown == option.default, f"{option.cli_flag}: {shown!r} vs {option.default!r}"


def test_every_option_on_the_command_line_is_an_option_of_fit_or_compare_with_the_tables_default():
    check_params("fit", SECTIONS)
    check_params("compare", ("evaluate",))
    assert {"jobs", "scheduler"} <= set(command_params("run"))


def test_summary_and_compare_take_fits_model_and_window_options():
    fit = command_params("fit")
    model_and_windows = [o.name for o in options("windows", "model") if o.on_cli
                         and o.name not in ("splits", "stride", "split_dates", "split_steps")]  # how rows split: not a model shape
    for command in ("summary", "compare", "tune"):
        params = command_params(command)
        for name in model_and_windows:
            assert name in params, f"{command} lacks --{name}"
            assert params[name].default == fit[name].default and params[name].help == fit[name].help, (command, name)


def test_config_json_records_every_field_and_reads_back_the_same_specs():
    specs = RunSpecs(DataSpec(source="dji", start="2019-01-01", features=("Close", "Volume")),
                     WindowSpec(window=8, horizon=2, splits=(0.6, 0.2, 0.2), stride=2),
                     ModelSpec(arch="dotrnn", units=3, layers=1, dropout=0.25, transition_layers=3, output_layers=2),
                     TrainSpec(epochs=3, batch_size=4, lr=0.01, seed=7, patience=2, steps_per_execution=8, jit_compile=False),
                     "jax")
    frame = pd.DataFrame({"Close": [1.0, 2.0]}, index=pd.DatetimeIndex(["2019-01-02", "2019-01-03"], name="Date"))
    config = specs.options_config("complete", datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc), frame, "0" * 64)
    for section in SECTIONS:
        read = set(get_arch(specs.model.arch).options) if section == "model" else set()  # dotrnn's own sizes
        assert {o.name for o in OPTIONS if o.section == section} | read <= set(config[section]), section
    data, windows, model, train = specs_from_config(config, None)
    assert (windows, model, train) == (specs.windows, specs.model, specs.train)
    assert data == dataclasses.replace(specs.data, cache_dir=None)


def test_an_older_config_reads_under_todays_names_and_meanings():
    """A config.json from before `stride` (it said `sequence_stride`) and before the scaling options (z-scores,
    no residual) reads as it meant; the Python API takes the older keyword too."""
    config = {"windows": {"window": 8, "sequence_stride": 3}, "model": {"arch": "gru", "units": 4}}
    windows, model = specs_from_config(config, None, ("windows", "model"))
    assert windows.stride == 3 and WindowSpec(sequence_stride=3) == WindowSpec(stride=3)
    assert (model.scaler, model.transform, model.residual) == ("zscore", "none", False)
    assert ModelSpec(arch="gru", units=4).residual is True  # today's defaults where nothing is recorded


def test_python_keywords_and_values_are_checked_by_the_table():
    with pytest.raises(KerasSeqError, match="unknown model option 'unitz'. Did you mean 'units'"):
        ModelSpec(unitz=3)
    with pytest.raises(KerasSeqError, match="`units` must be at most 4096"):
        ModelSpec(units=5000)
    assert WindowSpec(splits=[0.6, 0.2, 0.2]).splits == (0.6, 0.2, 0.2)  # a list is taken as the tuple it means
    assert DataSpec(start=datetime.date(2020, 1, 2)).start == "2020-01-02"


def test_tune_may_search_only_the_tables_tunable_options_of_model_windows_and_train():
    assert tunable() == {section: tuple(o.name for o in options(section) if o.tune) for section in ("model", "windows", "train")}
    assert "horizon" not in tunable()["windows"] and "source" not in str(tunable())  # the task itself is not searched


def test_no_module_but_the_table_spells_an_options_flag():
    """Library messages name an option as `window` (the CLI shows --window): a `--window` written anywhere in the
    package (its strings, f-strings and docstrings) would be a second declaration that drifts."""
    flags = {o.cli_flag for o in options() if o.on_cli}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "options.py" and path.parent.name == "config":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                words = node.value.replace("/", " ").replace(",", " ").replace(")", " ").replace(".", " ").split()
                found += [f"{path.relative_to(PACKAGE)}:{node.lineno} {w}" for w in words if w in flags]
    assert found == []
