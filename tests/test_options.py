"""Options are declared once, in the spec dataclasses: the CLI, the recipe schema and config.json are checked against them."""

from __future__ import annotations

import dataclasses
import datetime

import pandas as pd

from keras_seq.cli import cli
from keras_seq.compare import CompareSpec
from keras_seq.data.sources import DataSpec
from keras_seq.data.windows import WindowSpec
from keras_seq.models.spec import ModelSpec
from keras_seq.recipe import SCHEMA
from keras_seq.rundir import specs_from_config
from keras_seq.fitting import RunSpecs
from keras_seq.training import TrainSpec

SECTIONS = {"data": DataSpec, "windows": WindowSpec, "model": ModelSpec, "train": TrainSpec}
# Where a recipe or the CLI spells a field otherwise: (section, field) -> its name there.
RECIPE_NAMES = {("windows", "sequence_stride"): "stride", ("model", "arch"): "archs"}
CLI_NAMES = {("data", "source"): "source"}
# Fields that `fit` deliberately does not offer, with the reason.
NOT_ON_THE_CLI = {
    ("train", "jit_compile"): "XLA is Keras's choice from the CLI; recipes and Python may set it",
}


def fields(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(SECTIONS[section])]


def default_of(param):
    """A Click option's default (a flag without an explicit default is off)."""
    return False if getattr(param, "is_flag", False) and not isinstance(param.default, bool) else param.default


def command_params(name: str) -> dict:
    return {param.name: param for param in cli.commands[name].params}


def test_every_spec_field_is_a_recipe_key_and_every_recipe_key_a_field():
    for section in SECTIONS:
        expected = {RECIPE_NAMES.get((section, name), name) for name in fields(section)}
        assert set(SCHEMA[section]) == expected, section
    compare = {f.name for f in dataclasses.fields(CompareSpec)} - {"archs"}  # archs live in [model]
    assert set(SCHEMA["evaluate"]) == compare


def test_every_spec_field_is_an_option_of_fit_with_the_same_default():
    params = command_params("fit")
    for section in SECTIONS:
        defaults = SECTIONS[section]() if section != "data" else DataSpec()
        for name in fields(section):
            if (section, name) in NOT_ON_THE_CLI:
                assert CLI_NAMES.get((section, name), name) not in params
                continue
            param = params[CLI_NAMES.get((section, name), name)]
            default = getattr(defaults, name)
            if section == "data" and name in ("source", "features"):
                continue  # None on the command line means "dji" and "the target alone", as the spec's defaults say
            shown = default_of(param)
            if isinstance(default, tuple):
                shown = tuple(float(v) for v in shown.split(",")) if shown is not None else ()  # none given: ()
            assert shown == default, f"--{param.name}: {shown!r} vs {section}.{name} = {default!r}"


def test_summary_and_compare_take_fits_model_and_window_options():
    fit = command_params("fit")
    model_and_windows = [name for section in ("windows", "model") for name in fields(section)
                         if name not in ("splits", "sequence_stride", "split_dates")]  # how rows split: not a model shape
    for command in ("summary", "compare"):
        params = command_params(command)
        for name in model_and_windows:
            if command == "compare" and name == "arch":
                name = "archs"
            assert name in params, f"{command} lacks --{name}"
            if name in fit and name != "archs":
                assert default_of(params[name]) == default_of(fit[name]), (command, name)
                assert params[name].help == fit[name].help, (command, name)


def test_config_json_records_every_field_and_reads_back_the_same_specs():
    specs = RunSpecs(DataSpec(source="dji", start="2019-01-01", features=("Close", "Volume")),
                     WindowSpec(window=8, horizon=2, splits=(0.6, 0.2, 0.2), sequence_stride=2),
                     ModelSpec(arch="dotrnn", units=3, layers=1, dropout=0.25, transition_layers=3, output_layers=2),
                     TrainSpec(epochs=3, batch_size=4, lr=0.01, seed=7, patience=2, steps_per_execution=8, jit_compile=False),
                     "jax")
    frame = pd.DataFrame({"Close": [1.0, 2.0]}, index=pd.DatetimeIndex(["2019-01-02", "2019-01-03"], name="Date"))
    config = specs.options_config("complete", datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc), frame, "0" * 64)
    for section in SECTIONS:
        assert set(fields(section)) <= set(config[section]), section
    data, windows, model, train = specs_from_config(config, None)
    assert (windows, model, train) == (specs.windows, specs.model, specs.train)
    assert data == dataclasses.replace(specs.data, cache_dir=None)
