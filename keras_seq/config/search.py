"""A search's settings, before anything runs: the searched options (`Param`), the search (`TuneSpec`), and a
trial's options checked as a fit checks them. `keras-seq tune` (workflows.tune) runs the study; a recipe's
`[tune]` table is read into these.
"""

from __future__ import annotations

import dataclasses
import json

from keras_seq.config.options import options, spec_of
from keras_seq.errors import KerasSeqError


def loss_units() -> set[str]:
    """Options that change what the validation loss measures (its normalization, or the steps it averages over)."""
    return {f"{o.section}.{o.name}" for o in options() if o.loss_units}


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched option: a choice among `choices`, or a range from `low` to `high` (`log`: on a log scale)."""

    section: str
    key: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    def suggest(self, trial):
        """This option's value for an Optuna trial (a list choice travels as its JSON text)."""
        if self.choices:
            return self.decode(trial.suggest_categorical(self.name, [self.encode(c) for c in self.choices]))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    @property
    def lists(self) -> bool:
        """Whether the choices are lists (quantile levels): Optuna holds each as its JSON text."""
        return bool(self.choices) and isinstance(self.choices[0], list)

    def encode(self, value):
        return json.dumps(value) if self.lists else value

    def decode(self, value):
        """An Optuna value of this param as the option's value."""
        return json.loads(value) if self.lists else value

    def examples(self) -> list:
        """Values that stand for the whole param when the space is checked: each choice, or both ends."""
        return list(self.choices) or [self.low, self.high]

    def describe(self) -> str:
        if self.choices:
            return f"{self.name} in {list(self.choices)}"
        return f"{self.name} from {self.low:g} to {self.high:g}" + (" (log)" if self.log else "")


DEFAULT_SPACE = (
    Param("model", "arch", choices=("lstm", "gru", "drnn")),
    Param("model", "units", low=16, high=128, log=True, integer=True),
    Param("model", "layers", low=1, high=3, integer=True),
    Param("windows", "window", choices=(8, 16, 32)),
    Param("train", "lr", low=1e-4, high=1e-2, log=True),
    Param("model", "dropout", low=0.0, high=0.3),
)


@spec_of("tune")
class TuneSpec:
    """A search: how many trials, scored how, over which space, kept where: the option table's `tune` section
    (`keras_seq.config.options`), and the space searched, `space`: a tuple of `Param` (`DEFAULT_SPACE` unless given).
    """

    space: tuple = DEFAULT_SPACE

    def __post_init__(self):
        from keras_seq.safety import is_folder_name

        if not is_folder_name(self.study):
            raise KerasSeqError(f"the study name must be letters, digits, '-' or '_' (it names a folder). "
                                f"Received: {self.study!r}")
        if not self.space:
            raise KerasSeqError("the search space is empty: give [tune.model], [tune.windows] or [tune.train] "
                                "ranges or choices, or leave them all out for the default space.")
        names = [p.name for p in self.space]
        if len(set(names)) != len(names):
            raise KerasSeqError(f"the search space names {max(names, key=names.count)} twice.")
        if self.storage is not None and "://" not in self.storage:
            raise KerasSeqError(f"`storage` {self.storage}: expected an SQLAlchemy URL such as sqlite:///study.db or "
                                "postgresql://user@host/db (leave it out for the journal file in the study folder).")
        touched = sorted(loss_units().intersection(names))
        if self.objective == "val_loss" and touched:
            raise KerasSeqError(
                f"objective 'val_loss' cannot compare trials that change {touched[0]}: it changes what the "
                "validation loss measures. Use objective 'val_mase' (in the target's units), or leave it out of the space.")


def trial_specs(base, values: dict):
    """`base` (runs.run.RunSpecs) with a trial's values (`{"model.units": 32, ...}`), checked as a fit checks them."""
    import dataclasses as dc

    changes = {"model": {}, "windows": {}, "train": {}}
    for name, value in values.items():
        section, key = name.split(".")
        changes[section][key] = tuple(value) if isinstance(value, list) else value
    specs = dc.replace(base, model=dc.replace(base.model, **changes["model"]),
                       windows=dc.replace(base.windows, **changes["windows"]),
                       train=dc.replace(base.train, **changes["train"]))
    specs.check()
    return specs


def check_space(base, spec: TuneSpec) -> None:
    """Refuse, before any trial, a value that no fit could take: each choice and both ends of each range."""
    for param in spec.space:
        for value in param.examples():
            try:
                trial_specs(base, {param.name: value})
            except KerasSeqError as exc:
                raise KerasSeqError(f"the search space's {param.name} = {value!r} is refused: {exc}") from None


