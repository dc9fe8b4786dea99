"""The `keras-seq` command line: a thin Click layer over the verb modules (README.md, "Layout").

Nothing heavy is imported at module level: `keras-seq --help` answers without
importing Keras or TensorFlow, and `--backend` is applied before they load.
Every mistake a user can make ends as one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
import signal
import sys
import warnings


def _stopped_before_start(signum, frame):
    """SIGTERM while the command line is still being read: one line and exit 130, as at every later moment."""
    os.write(2, b"Error: interrupted before the command started; nothing was written.\n")
    os._exit(130)


if Path(sys.argv[0]).name == "keras-seq" and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _stopped_before_start)  # the console script: before anything else is imported

import click  # noqa: E402 - after the handler above

from keras_seq.config.options import Option, cli_text, get_option, options as table_options, specs_from_values
from keras_seq.models.registry import arch_names, get_arch

BACKEND_CHOICES = ("tensorflow", "jax", "torch")


def _reports_errors(command):
    """Turn keras-seq's user errors into one-line Click errors."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from keras_seq.errors import KerasSeqError

        from keras_seq.safety import write_error

        try:
            return command(*args, **kwargs)
        except KerasSeqError as exc:
            flags = verb_flags(click.get_current_context(silent=True))
            error = click.ClickException(cli_text(" ".join(str(exc).split()), flags))
            error.exit_code = getattr(exc, "exit_code", 1)
            raise error from None
        except KeyboardInterrupt:  # a second Ctrl-C, or one outside a command's safe points
            error = click.ClickException("interrupted; nothing unfinished was published.")
            error.exit_code = 130
            raise error from None
        except OSError as exc:  # a full disk or a read-only folder met while writing: staged files are gone
            raise click.ClickException(" ".join(str(write_error(exc.filename or "a file", exc)).split())) from None

    return wrapper


def _stops_on_signals(command):
    """SIGINT and SIGTERM stop the command at its next safe point, the same way every time (a second one at once)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from keras_seq.jobs.stop import stop_signals

        with stop_signals():
            return command(*args, **kwargs)

    return wrapper


def _ends_at_once(command):
    """For a command that writes nothing but one file at its end (predict): SIGINT or SIGTERM ends the process at
    once with one line and exit 130, its temporary file removed (once the forecast's file is in place, the
    command is done: a signal then ends it with exit 0), and it ends with one line and exit 1 past
    `$KERAS_SEQ_PREDICT_SECONDS` (default 600): the same answer wherever the signal or the time limit meets it
    (inside an import, or a runtime's own threads), and no artifact's program runs unbounded."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        import threading

        from keras_seq.safety import PUBLISHED, end_now

        try:
            seconds = float(os.environ.get("KERAS_SEQ_PREDICT_SECONDS", "600"))
        except ValueError:
            raise click.BadParameter("KERAS_SEQ_PREDICT_SECONDS must be a number of seconds.") from None
        if threading.current_thread() is not threading.main_thread():
            return command(*args, **kwargs)
        published = PUBLISHED[0]

        def stop(signum, frame):
            if PUBLISHED[0] != published:  # the forecast's file is in place: the command is done
                os._exit(0)
            end_now(f"{signal.Signals(signum).name} received: the forecast stopped; nothing was written.", 130)

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        timer = threading.Timer(seconds, end_now, (f"the forecast ran longer than {seconds:g} s and was stopped: a "
                                                   "keras-seq export answers in seconds. Nothing was written.", 1))
        timer.daemon = True
        timer.start()
        try:
            result = command(*args, **kwargs)
            if Path(sys.argv[0]).name == "keras-seq":  # the console script: done, so no signal may meet Python's own
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # exit (its handlers are
                sys.stdout.flush()  # reset there, and a SIGTERM then killed a finished forecast with status -15)
                sys.stderr.flush()
                os._exit(0)
            return result
        finally:
            timer.cancel()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    return wrapper


def _given_options(ctx, keep: tuple[str, ...]) -> list[str]:
    """The options typed on the command line, other than `keep`."""
    return [p.opts[0] for p in ctx.command.params if p.name not in keep and p.opts
            and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE]


def _comma_list(ctx, param, value):
    if value is None:
        return None
    items = tuple(item.strip() for item in value.split(",") if item.strip())
    if not items:
        raise click.BadParameter("give one or more column names separated by commas, e.g. Close,Volume.")
    return items


def _number_list(ctx, param, value):
    """`0.1,0.5,0.9` -> (0.1, 0.5, 0.9); None stays None."""
    if value is None:
        return ()
    try:
        return tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, e.g. 0.1,0.5,0.9. Received: {value!r}") from None


def _whole_numbers(ctx, param, value):
    """`36,24,18` -> (36, 24, 18), each at least 1; None stays ()."""
    if value is None:
        return ()
    try:
        parts = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        parts = ()
    if not parts or min(parts) < 1:
        raise click.BadParameter(f"expected whole numbers of steps separated by commas, e.g. 36,24,18. "
                                 f"Received: {value!r}")
    return parts


def _devices(ctx, param, value):
    """`devices`: a positive integer or "all"."""
    if value == "all":
        return value
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if count < 1:
        raise click.BadParameter(f"expected a positive integer or 'all'. Received: {value!r}")
    return count


def _splits(ctx, param, value):
    try:
        parts = tuple(float(p) for p in value.replace("/", ",").split(","))
    except ValueError:
        raise click.BadParameter(f"expected three numbers like 0.7,0.15,0.15. Received: {value!r}") from None
    if len(parts) == 3 and sum(parts) > 1.5:  # given as percentages, e.g. 70/15/15
        parts = tuple(p / 100 for p in parts)
    return parts


def _step_pair(ctx, param, value):
    """`split_steps`: two whole numbers of steps, VAL,TEST."""
    if value is None:
        return None
    try:
        parts = tuple(int(p) for p in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 2 or min(parts) < 0:
        raise click.BadParameter(f"expected two whole numbers of steps like 18,18 (validation, test). "
                                 f"Received: {value!r}")
    return parts


def _series_names(value):
    """`series`: one name as it is, several (comma-separated) as a tuple, or "all"."""
    if value is None or value == "all" or "," not in value:
        return value
    return tuple(name.strip() for name in value.split(",") if name.strip())


# How the command line reads each kind of option of the table (`Kind.reader`).
_READERS = {
    "int": {"type": int},
    "float": {"type": float},
    "text": {},
    "folder": {"type": click.Path(file_okay=False)},
    "list": {"callback": _comma_list},
    "names": {"callback": lambda ctx, param, value: _series_names(value)},
    "numbers": {"callback": _number_list},
    "whole_numbers": {"callback": _whole_numbers},
    "fractions": {"callback": _splits},
    "steps": {"callback": _step_pair},
    "count_or_all": {"type": click.UNPROCESSED, "callback": _devices},
}


class RegistryChoice(click.ParamType):
    """A name from a registry, looked up when the command runs (one registered after import is accepted)."""

    def __init__(self, name: str, names, fixed: tuple[str, ...] = ()):
        self.name, self.names, self.fixed = name, names, fixed

    def choices(self) -> tuple[str, ...]:
        return (*self.fixed, *self.names())

    def get_metavar(self, param, ctx=None):
        return "[" + "|".join(self.choices()) + "]"

    def convert(self, value, param, ctx):
        if value not in self.choices():
            self.fail(f"{value!r} is not one of {', '.join(map(repr, self.choices()))}.", param, ctx)
        return value


def ArchChoice() -> RegistryChoice:  # noqa: N802 - reads as the type it makes
    """A registered arch (`models.registry`)."""
    return RegistryChoice("arch", arch_names)


def _arch_help() -> str:
    return "; ".join(f"{name}: {get_arch(name).help}" for name in arch_names()) + "."


def _options(*options):
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _table_option(option: Option, **changes):
    """The Click option of an option of the table (`keras_seq.config.options`): its flag, reader, default, choices
    and help from the table; `changes` (a verb's own default or help) win."""
    decls, kwargs = _table_declaration(option, **changes)
    return click.option(*decls, cls=RenderedOption, **kwargs)


def _table_param(option: Option, **changes) -> click.Option:
    """`_table_option`'s Click parameter, for a command to add when it runs (`ModelCommand`)."""
    decls, kwargs = _table_declaration(option, **changes)
    return RenderedOption(list(decls), **kwargs)


def _table_declaration(option: Option, **changes) -> tuple[tuple, dict]:
    """The flags and keyword arguments of an option of the table's Click option."""
    reader = option.kind.reader
    kwargs = dict(_READERS[reader]) if reader != "flag" else {} if option.default else {"is_flag": True}
    default = option.default
    if isinstance(default, tuple):
        default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) or None  # as typed
    if option.choices is not None:
        kwargs["type"] = RegistryChoice(option.name, option.choice_names)
    decls = [option.cli_flag + (f"/--no-{option.cli_flag[2:]}" if reader == "flag" and option.default else "")]
    kwargs = {"default": default, "show_default": default is not None and default is not False,
              "metavar": option.metavar, "help": option.help, **kwargs, **changes}
    return (*decls, option.name), kwargs


class ModelCommand(click.Command):
    """A command that takes the model options: an option an arch registered after import is one of its flags."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        have = {p.name for p in params}
        extra = [_table_param(o) for o in table_options("model") if o.on_cli and o.name not in have]
        return [*params[:-1], *extra, params[-1]] if extra else params  # before --help


def _option(*decls, **kwargs):
    """`click.option` with `RenderedOption`: its help is written as the library writes, and shown as flags."""
    return click.option(*decls, cls=RenderedOption, **kwargs)


def _say(text: str, err: bool = False) -> None:
    """Echo a library's text (a report, a warning) with its options written as flags (`cli_text`)."""
    click.echo(cli_text(text, verb_flags(click.get_current_context(silent=True))), err=err)


def verb_flags(ctx) -> dict[str, str]:
    """Every command's parameters by name -> flag (`mc_samples` -> `--mc-samples`), for `cli_text`."""
    commands = getattr(ctx.find_root().command, "commands", {}) if ctx is not None else {}
    return {p.name: p.opts[0] for command in commands.values() for p in command.params
            if p.opts and p.opts[0].startswith("--")}


class RenderedOption(click.Option):
    """An option whose help names options as the command line spells them (`cli_text`)."""

    def get_help_record(self, ctx):
        written, self.help = self.help, cli_text(self.help or "", verb_flags(ctx))
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = written


def _table_options(sections: tuple[str, ...], leave_out: tuple[str, ...] = ()):
    """The Click options of these sections of the table (those offered on the command line)."""
    return tuple(_table_option(o) for o in table_options(*sections) if o.on_cli and o.name not in leave_out)


# The series of evaluate and predict: the run's own unless given.
data_options = _options(*(_table_option(get_option(name), default=None, show_default=False)
                          for name in ("source", "start", "end")))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="keras-seq", prog_name="keras-seq")
def cli():
    """Recurrent sequence models for time series, in Keras 3.

    Start with `keras-seq fit --arch lstm`: it trains on the embedded Dow Jones
    data, evaluates on a held-out test split against the persistence baseline
    and writes a run folder under saved_models/.
    """


_MC_OPTION = _option("--mc-samples", type=int, default=None, metavar="N",
                          help="MC dropout: quantiles 0.025, 0.1, 0.5, 0.9, 0.975 of N forecasts with the model's "
                               "dropout on (a point model trained with `dropout`; run folders and .keras files).")
_BACKEND_OPTION = _option("--backend", type=click.Choice(BACKEND_CHOICES), default=None, envvar="KERAS_BACKEND",
                               help="Keras backend (default: $KERAS_BACKEND, else jax).")

_MLFLOW_OPTION = _option(
    "--mlflow", is_flag=False, flag_value="", default=None, metavar="[URI]",
    help="Also log the finished folder to MLflow: a tracking URI (http://127.0.0.1:5000, sqlite:///mlflow.db), or "
         "alone for $MLFLOW_TRACKING_URI, else MLflow's default. A server that fails costs one warning line; "
         "`keras-seq log` logs the folder later.")
_TENSORBOARD_OPTION = _option(
    "--tensorboard", default=None, type=click.Path(file_okay=False), metavar="DIR",
    help="Write each epoch's losses as TensorBoard scalars under DIR/<fit>/ (any backend; `tensorboard --logdir "
         "DIR`).")
# Everything `fit`, `compare` and `tune` share: every option of the table, then where the run goes.
training_options = _options(
    *_table_options(("data", "windows", "model", "train")),
    _BACKEND_OPTION,
    _option("--out", default="saved_models", show_default=True, type=click.Path(),
                 help="Folder that receives the output folder."),
    _MLFLOW_OPTION,
    _TENSORBOARD_OPTION,
    _option("-q", "--quiet", is_flag=True, help="No progress bar."),
)


def _tensorboard(options: dict):
    """The `--tensorboard` block the command's fits train in (nothing without the option)."""
    from keras_seq.training.tensorboard import tensorboard

    return tensorboard(options.get("tensorboard"))


def _log_mlflow(path, options: dict) -> None:
    """`--mlflow`: log the finished folder; a failure is one warning line (the folder is written either way)."""
    if path is not None and options.get("mlflow") is not None:
        from keras_seq.runs.tracking import track

        track(path, options["mlflow"] or None, echo=lambda line: _say(line, err=True))


@cli.command(cls=ModelCommand)
@_option("--arch", type=ArchChoice(), default="lstm", show_default=True, help=_arch_help())
@_option("--resume", "resume", default=None, metavar="RUN_DIR",
              help="Continue an unfinished fit from its last completed epoch: a folder Ctrl-C marked interrupted, "
                   "or the .partial folder of a run that was killed. Its options come from its config.json.")
@training_options
@_option("--coordinator", default=None, metavar="HOST:PORT",
              help="Join a multi-process job (jax.distributed): process 0's address; default "
                   "$KERAS_DISTRIBUTION_JOB_ADDRESSES.")
@_option("--num-processes", type=click.IntRange(min=1), default=None,
              help="Processes in the job (default $KERAS_DISTRIBUTION_NUM_PROCESSES).")
@_option("--process-id", type=click.IntRange(min=0), default=None,
              help="This process's id, 0 to N-1; process 0 writes the run (default $KERAS_DISTRIBUTION_PROCESS_ID).")
@_option("--report", is_flag=True, help="Also write the run's HTML page, report.html (see `keras-seq report`).")
@_reports_errors
@_stops_on_signals
def fit(arch, resume, coordinator, num_processes, process_id, **options):
    """Train a model, evaluate it on the held-out test split, write a run folder.

    Ctrl-C stops training after the current batch and keeps the run, marked
    interrupted, with the best weights so far; `--resume` continues it.
    """
    from keras_seq.training.distributed import Cluster
    from keras_seq.workflows.fit import fit_run, resume_run

    verbose = 0 if options["quiet"] else "auto"
    cluster = Cluster.from_environment(coordinator=coordinator, num_processes=num_processes, process_id=process_id)
    if resume is not None:
        given = _given_options(click.get_current_context(), ("resume", "quiet", "report", "coordinator", "num_processes",
                                                              "process_id", "mlflow", "tensorboard"))
        if given:
            raise click.UsageError(f"--resume takes every option from the run's config.json; drop {given[0]}.")
        with _tensorboard(options):
            result = resume_run(resume, verbose=verbose, cluster=cluster)
    else:
        with _tensorboard(options):
            result = fit_run(*specs_from_values(options, arch=arch), out=options["out"], backend=options["backend"],
                             verbose=verbose, cluster=cluster)
    if result.path is None:
        click.echo(f"process {cluster.process_id} of {cluster.num_processes}: trained; process 0 writes the run folder.")
        return
    _finished_run(result, options, options["backend"])


def _finished_run(result, options: dict, backend, written: str = "") -> None:
    """What `fit` and `update` print of a finished run (its table and folder), then its `--report` and `--mlflow`."""
    click.echo()
    _say(result.report.table())
    click.echo(f"run written to {result.path}{written}")
    if options["report"]:
        from keras_seq.runs.pages import report_run

        click.echo(f"report written to {report_run(result.path, backend=backend)}")
    _log_mlflow(result.path, options)


def _arch_list(ctx, param, value):
    from keras_seq.errors import KerasSeqError
    from keras_seq.models.registry import check_arch_list

    try:
        return check_arch_list(tuple(a.strip().lower() for a in value.split(",") if a.strip()), "")
    except KerasSeqError as exc:
        raise click.BadParameter(str(exc)) from None


_PLACEMENT = tuple(o for o in table_options("evaluate") if o.placement)  # where a comparison's fits run
_FANOUT_OPTIONS = tuple(_table_option(o) for o in _PLACEMENT)


@cli.command(cls=ModelCommand)
@_table_option(get_option("archs"), callback=_arch_list)
@_table_option(get_option("repeats"))
@_table_option(get_option("backtest"))
@_options(*_FANOUT_OPTIONS)
@_option("--resume", "resume", default=None, metavar="COMPARE_DIR",
              help="Finish a comparison a signal or an error stopped: its kept fits are not trained again "
                   "(every other option comes from its interrupted.json).")
@training_options
@_reports_errors
@_stops_on_signals
def compare(archs, repeats, backtest, jobs, scheduler, resume, **options):
    """Train several archs on identical data, split, seeds and budget; compare them on held-out data.

    Writes compare-<UTC>/ under --out with comparison.md, comparison.json,
    compare_loss.png, compare_forecast.png, compare_mae.png and every model's
    run folder. Stopped early (Ctrl-C, or a fit's error), it keeps the fits
    that finished; `--resume` finishes it.
    """
    from keras_seq.runs.comparison import CompareSpec
    from keras_seq.workflows.compare import compare_models, resume_comparison

    verbose = 0 if options["quiet"] else "auto"
    if resume is not None:
        given = _given_options(click.get_current_context(), ("resume", "quiet", "mlflow", "tensorboard",
                                                              *(o.name for o in _PLACEMENT)))
        if given:
            raise click.UsageError(f"--resume takes every option from the comparison's interrupted.json; "
                                   f"drop {given[0]}.")
        with _tensorboard(options):
            result = resume_comparison(resume, jobs=jobs, scheduler=scheduler, verbose=verbose)
    else:
        data, windows, model, train = specs_from_values(options, arch=archs[0])
        spec = CompareSpec(archs=archs, repeats=repeats, backtest=backtest, jobs=jobs, scheduler=scheduler)
        with _tensorboard(options):
            result = compare_models(data, windows, model, train, spec, out=options["out"],
                                    backend=options["backend"], verbose=verbose)
    click.echo()
    _say(result.markdown)
    click.echo(f"comparison written to {result.path}")
    _log_mlflow(result.path, options)


@cli.command(cls=ModelCommand)
@_option("--recipe", default=None, metavar="RECIPE",
              help="A recipe with a [tune] table: its options are the base fit, its table the search space "
                   "(the fit options below are then left out).")
@_option("--arch", type=ArchChoice(), default="lstm", show_default=True,
              help="The base fit's arch (the default space searches lstm, gru and drnn).")
@_options(*(_table_option(o, default=None, show_default=False, help=f"{o.help} Default: {o.default}, or the recipe's.")
            if o.in_recipe else _table_option(o) for o in table_options("tune")))
@_option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="With --recipe: override a key of its base fit, e.g. --set train.epochs=5 (repeatable).")
@training_options
@_reports_errors
@_stops_on_signals
def tune(recipe, arch, overrides, **options):
    """Search hyperparameters with Optuna, scored on the validation split; refit the best on the test split.

    Writes OUT/STUDY/ with the study's storage, trials.csv, history.png,
    importance.png, tune.json and the best trial's run folder under best/.
    The same command resumes a study stopped by Ctrl-C or a crash.
    """
    from keras_seq.config.search import TuneSpec
    from keras_seq.workflows.tune import tune as tune_study

    given = {o.name: options.pop(o.name) for o in table_options("tune")}
    settings = {name: value for name, value in given.items() if value is not None}  # a recipe's, unless given
    if recipe is not None:
        specs, table = _tune_recipe(recipe, overrides)
        settings = {**table, **settings}
    elif overrides:
        raise click.UsageError("--set overrides a recipe's keys: give --recipe too (or use the fit options).")
    else:
        specs = specs_from_values(options, arch=arch)
    spec = TuneSpec(**settings)
    with _tensorboard(options):
        summary = tune_study(*specs, spec, out=options["out"], backend=options["backend"],
                             verbose=0 if options["quiet"] else "auto")
    best = summary["best"]
    counted = summary["trials_counted"]
    click.echo(f"{counted} trial{'' if counted == 1 else 's'} counted "
               f"({', '.join(f'{v} {k}' for k, v in summary['states'].items())})")
    if best is None:
        click.echo("no trial completed: see trials.csv for why")
    else:
        click.echo(f"best: trial {best['number']}, {spec.objective} {best['value']:.4f}, {best['params']}")
    if summary.get("refit"):
        click.echo(f"best trial refit to {summary['refit']['run']}")
    click.echo(f"study written to {Path(options['out']) / spec.study}")
    _log_mlflow(Path(options["out"]) / spec.study, options)


def _tune_recipe(name: str, overrides: tuple[str, ...] = ()):
    """The base specs and [tune] settings of a recipe (with `--set` overrides); it must have a [tune] table and
    take no fit options."""
    from keras_seq.errors import KerasSeqError
    from keras_seq.workflows.recipe import load_recipe

    given = _given_options(click.get_current_context(), ("recipe", "overrides", "out", "backend", "quiet",
                                                          *(o.name for o in table_options("tune"))))
    if given:
        raise click.UsageError(f"--recipe takes the fit's options from the recipe; drop {given[0]} (or edit the recipe, "
                               "or --set its keys).")
    loaded = load_recipe(name, overrides)
    if loaded.tune is None:
        raise KerasSeqError(f"{loaded.path} has no [tune] table: add one (e.g. [tune.model] units = {{low = 16, "
                            "high = 128, log = true}}), or run it with `keras-seq run`.")
    experiment = loaded.experiments[0]
    return (experiment.data, experiment.windows, experiment.model, experiment.train), loaded.tune


@cli.command(name="run")
@click.argument("recipe")
@_option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe key everywhere, e.g. --set train.epochs=5 (repeatable).")
@_BACKEND_OPTION
@_option("--out", default="saved_models", show_default=True, type=click.Path(),
              help="Folder that receives the recipe's run folder.")
@_option("--check", is_flag=True, help="Check the recipe and print it resolved, without running it.")
@_options(*_FANOUT_OPTIONS)
@_MLFLOW_OPTION
@_TENSORBOARD_OPTION
@_option("-q", "--quiet", is_flag=True, help="No progress bars.")
@_reports_errors
@_stops_on_signals
def run_command(recipe, overrides, backend, out, check, quiet, **given):
    """Run a recipe: a TOML file, or the name of a shipped one (see `keras-seq recipes`).

    Writes <name>-<UTC>/ under --out with report.md, the resolved recipe.toml
    (run it again to repeat the run), run.json and a comparison folder per
    experiment.
    """
    from keras_seq.workflows.recipe import load_recipe, resolved_toml, run_recipe

    loaded = load_recipe(recipe, overrides)
    placement = {o.name: given.pop(o.name) for o in _PLACEMENT}  # where the fits run
    tracking = {key: value for key, value in given.items() if value is not None}  # --mlflow, --tensorboard
    if tracking:  # the command line's tracking replaces the recipe's [track]
        import dataclasses

        loaded = dataclasses.replace(loaded, track={**loaded.track, **tracking})
    if check:
        click.echo(resolved_toml(loaded), nl=False)
        return
    result = run_recipe(loaded, out=out, backend=backend, verbose=0 if quiet else "auto",
                        echo=lambda line: _say(f"keras-seq run: {line}", err=True), **placement)
    click.echo()
    _say(result.report)
    click.echo(f"recipe run written to {result.path}")


@cli.command()
@click.argument("export_dir", type=click.Path())
@_option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@_option("--port", type=click.IntRange(1, 65535), default=5000, show_default=True, help="Port to listen on.")
@_option("--server-workers", type=click.IntRange(1, 64), default=1, show_default=True,
         help="The server's worker processes.")
@_reports_errors
def serve(export_dir, host, port, server_workers):
    """Serve an MLflow export (`export --format mlflow`) over HTTP with `mlflow models serve`.

    POST a pandas frame of windows (`{"dataframe_split": ...}`, columns as in
    the model's input_example.json) to http://HOST:PORT/invocations; the
    answer holds the forecasts as `predict` gives them. Runs until Ctrl-C.
    """
    import subprocess

    from keras_seq.artifacts.mlflow_model import serve_command

    command, env = serve_command(export_dir, host, port, server_workers)
    click.echo(f"serving {command[4]} on http://{host}:{port}/invocations (mlflow models serve; Ctrl-C stops it)")
    try:
        code = subprocess.call(command, env=env)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


@cli.command()
@click.argument("path", type=click.Path())
@_option("--out", default=None, type=click.Path(dir_okay=False), help="The page's file (default: PATH/report.html).")
@_BACKEND_OPTION
@_reports_errors
def report(path, out, backend):
    """Write one self-contained HTML page of a run folder: metrics beside the baselines, an interactive forecast
    chart (bands, the best baseline, a selector of series), loss curves and each series' skill."""
    from keras_seq.runs.pages import report_run

    click.echo(f"report written to {report_run(path, out=out, backend=backend)}")


@cli.command(name="log")
@click.argument("path", type=click.Path())
@_option("--mlflow", default=None, metavar="URI",
              help="The tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's default).")
@_option("--experiment", default=None, help="The MLflow experiment (default: $MLFLOW_EXPERIMENT_NAME, else keras-seq).")
@_reports_errors
def log_command(path, mlflow, experiment):
    """Log a finished run, comparison, study or recipe run folder to MLflow (a comparison: a parent run with a
    child per fit; a study: one per trial)."""
    from keras_seq.runs.tracking import log_mlflow, shown_uri

    run_id = log_mlflow(path, mlflow, experiment=experiment)
    click.echo(f"logged {path} to MLflow at {shown_uri(mlflow or os.environ.get('MLFLOW_TRACKING_URI'))}: "
               f"run {run_id}")


@cli.command()
def recipes():
    """List the recipes shipped with keras-seq."""
    from keras_seq.workflows.recipe import shipped_recipes

    shipped = shipped_recipes()
    width = max(len(name) for name in shipped)
    for name, (path, description) in shipped.items():
        click.echo(f"{name:<{width}}  {description}")
    click.echo(f"\nrun one with `keras-seq run NAME` (files in {next(iter(shipped.values()))[0].parent})")


@cli.command()
@click.argument("run_dir", type=click.Path())
@data_options
@_option("--out", default=None, type=click.Path(),
              help="Folder for metrics.json and forecast.png (default: RUN_DIR/evaluations/<timestamp>).")
@_option("--plot-series", default=None, metavar="NAMES", callback=_comma_list,
              help="A panel's series to draw in forecast.png, comma-separated (default: the lowest, median and "
                   "highest skill).")
@_MC_OPTION
@_BACKEND_OPTION
@_reports_errors
def evaluate(run_dir, source, start, end, out, plot_series, mc_samples, backend):
    """Recompute test metrics and plots of RUN_DIR, on its own data or new data.

    With no data options, the run's own held-out test split is used. With
    `source`, `start` or `end`, every window of that data is evaluated.
    """
    from keras_seq.workflows.evaluate import evaluate_run

    result = evaluate_run(run_dir, source=source, start=start, end=end, out=out, backend=backend,
                          plot_series=plot_series, mc_samples=mc_samples or 0)
    _say(result.report.table())
    click.echo(f"evaluation written to {result.path}")


@cli.command()
@click.argument("run_dir", type=click.Path())
@_table_option(get_option("source"), default=None, show_default=False,
               help="Where the newer rows are (default: the run's own source).")
@_table_option(get_option("end"), help="Last date or step read (default: the source's last row).")
@_table_option(get_option("epochs"), default=5, help="Epochs to train from the run's weights.")
@_option("--refit-scaling", is_flag=True,
         help="Fit the scaling statistics again on the new training split (default: keep the run's).")
@_option("--out", default=None, type=click.Path(), help="Folder that receives the new run (default: RUN_DIR's folder).")
@_BACKEND_OPTION
@_MLFLOW_OPTION
@_TENSORBOARD_OPTION
@_option("--report", is_flag=True, help="Also write the new run's HTML page, report.html (see `keras-seq report`).")
@_option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_reports_errors
@_stops_on_signals
def update(run_dir, source, end, epochs, refit_scaling, out, backend, quiet, **tracking):
    """Fine-tune RUN_DIR's model on newer data and write it as a new run, its child.

    Starts from the run's weights and optimizer state, moves the validation
    and test spans to the newest rows, and scores the run's model on the
    same test rows. A killed update goes on with `keras-seq fit --resume`.
    """
    from keras_seq.runs.update import update_run

    with _tensorboard(tracking):
        result = update_run(run_dir, source=source, end=end, epochs=epochs, refit_scaling=refit_scaling, out=out,
                            backend=backend, verbose=0 if quiet else "auto")
    from keras_seq.runs.folder import CONFIG_FILE, read_json

    _finished_run(result, tracking, backend, f" (parent: {read_json(result.path / CONFIG_FILE)['parent']['run']})")


@cli.command()
@click.argument("run_dir", type=click.Path())
@_option("--format", "formats", default="all", show_default=True,
              help="savedmodel, onnx, keras, mlflow (an MLflow model folder; the mlflow extra) or all (the first "
                   "three); several separated by commas.")
@_option("--out", default=None, type=click.Path(), help="Export folder (default: RUN_DIR/export).")
@_option("--overwrite", is_flag=True, help="Replace an existing export folder.")
@_option("--name", default=None, help="Model name in the SavedModel's TF Serving layout (default: the arch).")
@_option("--model-version", type=int, default=1, show_default=True, help="SavedModel version folder.")
@_option("--tolerance", type=float, default=None, hidden=True, help="Parity limit, relative to the target's std.")
@_option("--register", default=None, metavar="NAME",
              help="With --format mlflow: add the MLflow model to MLflow's model registry as a new version of NAME.")
@_option("--mlflow", default=None, metavar="URI",
              help="The tracking and registry URI for --register (default: $MLFLOW_TRACKING_URI, else MLflow's).")
@_reports_errors
@_stops_on_signals
def export(run_dir, formats, out, overwrite, name, model_version, tolerance, **registry):
    """Export RUN_DIR's model as SavedModel, ONNX and .keras, each proven equal to it (and as an MLflow model)."""
    from keras_seq.artifacts.export import DEFAULT_TOLERANCE, MLFLOW, export_run, parse_formats

    if registry["register"] is not None and MLFLOW not in parse_formats(formats):
        raise click.UsageError("--register adds an MLflow model to the registry: add mlflow to --format.")
    result = export_run(run_dir, formats, out=out, overwrite=overwrite, name=name, version=model_version,
                        tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance)
    for fmt, check in result.parity.items():
        artifact = result.path / result.card["artifacts"][fmt]["path"]
        click.echo(
            f"{fmt:<10} {artifact}  parity: max |diff| {check['max_abs_diff']:.3g} "
            f"= {check['relative_diff']:.1e} of the target's std over {check['windows']} test windows"
        )
    click.echo(f"export written to {result.path} (model card: {result.path / 'model_card.json'})")
    if registry["register"] is not None:
        from keras_seq.artifacts.mlflow_model import register

        version = register(result.path / MLFLOW, registry["register"], registry["mlflow"], Path(run_dir).name)
        click.echo(f"registered as {registry['register']!r} version {version}")


@cli.command()
@click.argument("artifact", type=click.Path())
@data_options
@_option("--steps", type=int, default=None, help="Values to forecast, at most 10,000 (default: the model's horizon).")
@_option("--csv", "csv_path", default=None, type=click.Path(dir_okay=False), help="Also write the forecast to this CSV.")
@_table_option(get_option("series"), help="Series to forecast: of a model trained on several (default: all of "
               "them), or of `source`'s long table with `series_column`. NAME, A,B or all.")
@_table_option(get_option("series_column"))
@_option("--future", default=None, type=click.Path(dir_okay=False), metavar="CSV",
              help="Values known in advance for the dates forecast (a model with `future_features`): a date column, "
                   "a panel's series column and those columns.")
@_MC_OPTION
@_option("--actuals", default=None, type=click.Path(dir_okay=False), metavar="CSV",
         help="The rows that arrived since the run's data ended, read as `source` is: a run fitted with "
              "`conformal_rate` tracks its intervals through them first, then forecasts after them.")
@_option("--backend", type=click.Choice(BACKEND_CHOICES), default=None, envvar="KERAS_BACKEND",
              help="Keras backend for run folders and .keras files.")
@_ends_at_once
@_reports_errors
def predict(artifact, steps, csv_path, mc_samples, actuals, backend, **data):
    """Forecast the values after the data's last window.

    ARTIFACT is a run folder, a .keras file, a SavedModel folder or an .onnx
    file. The data defaults to the model's training data. A model trained on
    several series forecasts each of them: a long table of series, date and
    forecast.
    """
    from keras_seq.evaluation.metrics import figure
    from keras_seq.workflows.predict import date_format, predict_artifact

    table = predict_artifact(artifact, steps=steps, backend=backend, csv=csv_path, mc_samples=mc_samples,
                             actuals=actuals, **data)
    if table.attrs.get("adapted"):
        _say(table.attrs["adapted"], err=True)
    fmt = date_format(table.get("date"))
    click.echo(table.to_string(index=False, formatters={"date": lambda d: d.strftime(fmt)} if fmt else None,
                               float_format=figure))
    if csv_path:
        click.echo(f"forecast written to {csv_path}")


@cli.command(cls=ModelCommand)
@click.argument("run_dir", required=False, type=click.Path())
@_option("--arch", type=ArchChoice(), default="lstm", show_default=True, help=_arch_help())
@_table_option(get_option("features"))
@_options(*_table_options(("windows", "model"), leave_out=("splits", "stride", "split_dates", "split_steps")))
@_BACKEND_OPTION
@_reports_errors
def summary(run_dir, arch, features, backend, **options):
    """List every weight of a model with its shape, and the parameter count.

    Takes fit's model options; of `features` only the number of columns matters.
    With RUN_DIR: the run's line instead, from its first fit through each
    `update` to it, with each run's data range, epochs and test MAE. With an
    export folder: each version exported into it, every artifact checked
    against the sha256 its card recorded (exit 1 where one changed).
    """
    if run_dir is not None:
        given = _given_options(click.get_current_context(), ("run_dir", "backend"))
        if given:
            raise click.UsageError(f"RUN_DIR's line is read from its folder: drop {given[0]}.")
        _folder_summary(Path(run_dir))
        return
    from keras_seq.backend import import_keras, use_backend
    from keras_seq.data.sources import DataSpec

    windows, model = specs_from_values(options, ("windows", "model"), arch=arch)
    n_features = len(DataSpec(features=features).feature_columns)  # checked as fit checks it
    use_backend(backend)
    import_keras()
    from keras_seq.workflows.summary import model_summary

    click.echo(model_summary(model, windows, n_features))


def _folder_summary(folder: Path) -> None:
    """`summary FOLDER`: a run's line, or an export folder's versions, verified."""
    from keras_seq.artifacts import CARD_FILE
    from keras_seq.artifacts.versions import check_versions
    from keras_seq.errors import KerasSeqError
    from keras_seq.runs.lineage import lineage_lines

    if not (folder / CARD_FILE).is_file():
        click.echo("\n".join(lineage_lines(folder)))
        return
    lines = check_versions(folder)
    click.echo("\n".join(lines))
    failed = [line.split(":")[0] for line in lines if not line.endswith("sha256 ok")]
    if failed:
        raise KerasSeqError(f"{', '.join(failed)} of {folder} no longer match(es) the sha256 in {CARD_FILE}: "
                            "an artifact was changed or removed after export. Export that run again.")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    from keras_seq.errors import DataWarning, FolderWarning, RunWarning, one_line

    if issubclass(category, (DataWarning, FolderWarning, RunWarning)):
        _say(f"Warning: {one_line(str(message))}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, printing every usage error as one line."""
    warnings.showwarning = _show_warning
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, _stopped_before_start):  # SIGTERM unwinds like Ctrl-C:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # staged folders are removed
    try:
        cli.main(args=argv, prog_name="keras-seq", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "keras-seq"
        click.echo(f"Error: {' '.join(exc.format_message().split())} (see '{command} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        from keras_seq.errors import mask_credentials, one_line

        click.echo(f"Error: {mask_credentials(one_line(exc.format_message()))}", err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Error: interrupted; nothing unfinished was published.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
