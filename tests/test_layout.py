"""The package's shape, read from the source with `ast`: no import cycle between modules or packages, no workflow
importing another, no private name imported, no long function, no copied function, no option name spelled twice."""

from __future__ import annotations

import ast
import collections
import copy
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "keras_seq"


def module_imports() -> dict[str, set[str]]:
    """Each keras_seq module -> the keras_seq modules it imports anywhere (function-level imports included)."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in names.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                       else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            for target in targets:
                while target not in names and "." in target:  # `from keras_seq.x import name`: the module x
                    target = target.rsplit(".", 1)[0]
                if target in names and target != name and target != "keras_seq":
                    found.add(target)
        graph[name] = found
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_keras_seq_modules():
    graph = module_imports()
    assert {"keras_seq.workflows.fit", "keras_seq.artifacts.export", "keras_seq.safety"} <= set(graph)
    assert "keras_seq.safety" in graph["keras_seq.workflows.fit"]  # function-level imports are seen
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_packages_are_layers_no_package_imports_one_that_imports_it():
    """The layout is a stack (config, data, models, training, evaluation, present, runs, artifacts, workflows, cli):
    the modules' imports, taken package by package, have no cycle, so each package only uses those below it."""
    def package(name):
        return ".".join(name.split(".")[:2])

    layers = {}
    for name, targets in module_imports().items():
        layers.setdefault(package(name), set()).update(package(t) for t in targets if package(t) != package(name))
    assert find_cycle(layers) is None, find_cycle(layers)
    assert "keras_seq.runs" in layers["keras_seq.workflows"] and "keras_seq.runs" not in layers["keras_seq.present"]


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


MAX_LINES, MAX_PARAMETERS = 60, 8


def long_functions(source: str) -> list[str]:
    """Functions of `source` over MAX_LINES lines (nested functions count in their outer one) or MAX_PARAMETERS
    parameters (not counting self, cls, *args and **kwargs); the constructors of Keras layers and cells, which mirror
    Keras's own signatures, are excepted from the parameter count."""
    found = []
    tree = ast.parse(source)
    keras_classes = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                     and any(ast.unparse(base).startswith("keras.layers.") for base in node.bases)}
    constructors = {id(item) for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.name in keras_classes
                    for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"}
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        lines = node.end_lineno - node.lineno + 1
        named = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
        parameters = len([name for name in named if name not in ("self", "cls")])
        if lines > MAX_LINES:
            found.append(f"{node.name}: {lines} lines")
        if parameters > MAX_PARAMETERS and id(node) not in constructors:
            found.append(f"{node.name}: {parameters} parameters")
    return found


def test_no_function_in_keras_seq_is_over_60_lines_or_8_parameters():
    found = [f"{path.relative_to(PACKAGE.parent)}: {problem}" for path in sorted(PACKAGE.rglob("*.py"))
             for problem in long_functions(path.read_text(encoding="utf-8"))]
    assert not found, "\n".join(found)


def test_the_size_check_sees_long_functions_and_long_argument_lists():
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    source = (f"def long():\n{body}\n\ndef short(a, b):\n    return a\n\ndef wide(a, b, c, d, e, f, g, h, i, *args, **kw):\n"
              "    pass\n\nclass Cell(keras.layers.Layer):\n    def __init__(self, a, b, c, d, e, f, g, h, i):\n        pass\n\n"
              "class Plain:\n    def __init__(self, a, b, c, d, e, f, g, h, i):\n        pass\n")
    assert long_functions(source) == ["long: 61 lines", "wide: 9 parameters", "__init__: 9 parameters"]


def private_imports(source: str, module: str) -> list[str]:
    """`from keras_seq.x import _name` in `source` where x is another module than `module`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("keras_seq"):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_") and node.module != module]
    return found


def test_no_module_imports_another_modules_private_names():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found += [f"{module}: {name}" for name in private_imports(path.read_text(encoding="utf-8"), module)]
    assert not found, "\n".join(found)
    assert private_imports("from keras_seq.workflows.fit import _train, run\n", "keras_seq.workflows.tune") == ["keras_seq.workflows.fit._train"]


# The verbs' modules (keras_seq/workflows/): each is a thin workflow over the shared layers (config, data, models,
# training, evaluation, runs, artifacts, jobs). None imports another, so that a change to one verb never reaches
# another, and only the front ends (the CLI, the package's lazy API) import them.
FRONT_ENDS = {"keras_seq", "keras_seq.cli", "keras_seq.__main__"}


def test_no_workflow_imports_another_and_only_the_front_ends_import_workflows():
    graph = module_imports()
    workflows = {name for name in graph if name.startswith("keras_seq.workflows.")}
    assert {"keras_seq.workflows.fit", "keras_seq.workflows.compare", "keras_seq.workflows.recipe"} <= workflows
    assert sorted((name, target) for name in workflows for target in graph[name] & workflows) == []
    assert sorted((name, target) for name in set(graph) - workflows - FRONT_ENDS for target in graph[name] & workflows) == []
    assert "keras_seq.runs.run" in graph["keras_seq.workflows.compare"] and "keras_seq.runs.run" in graph["keras_seq.workflows.tune"]


def option_strings(source: str, names: set[str]) -> list[str]:
    """The option names written as strings in `source`, but for a look-up of the table (`get_option("window")`)
    and the declaration of an option (`Option("model", "cell", ...)`): each a second spelling of an option."""
    tree = ast.parse(source)
    lookups = {id(arg) for node in ast.walk(tree) if isinstance(node, ast.Call)
               and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("get_option", "Option")
               for arg in node.args}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in names
            and id(node) not in lookups]


# Where an option's name is still written as a string outside the option table, per module: a word an option
# shares with a format keras-seq publishes (comparison.json, the model card, config.json's records, a recipe) or a
# name Keras keeps, a message naming the option, or a verb's own keyword of the same name. Exact both ways: a new
# spelling fails, and one moved away must leave this list.
SHARED_WORDS = {
    # comparison.json's per-fit records (`arch`, `seed`, `splits`) and its readers
    "runs/comparison.py": {"arch", "archs", "backtest", "seed", "splits"},
    "runs/fits.py": {"arch", "seed", "splits"},
    "present/tables.py": {"archs", "backtest", "splits"},
    "present/plots.py": {"archs", "backtest", "series", "splits"},  # and an axis label
    # the model card (`arch`, the input `series`, the output's `horizon` axis, the run's split dates, calibration)
    "artifacts/export.py": {"arch", "conformal", "horizon", "series", "split_dates"},
    # the MLflow model's loader reads the card's fields (it runs without keras-seq), and its frame's `series` column
    "artifacts/mlflow_model.py": {"features", "horizon", "target", "target_kind", "window"},
    "artifacts/mlflow_pyfunc.py": {"features", "horizon", "pad", "series", "target", "window"},
    # config.json's records beside the options (the split dates drawn, the calibration), metrics.json's per-series
    # summary, tune's summary.json and study; the model card's `pad` (whether it takes NaN before a series starts)
    "runs/run.py": {"conformal", "split_dates", "supervision"},
    "runs/folder.py": {"cache_dir", "conformal", "epochs", "pad", "quantiles"},
    "runs/update.py": {"split_dates"},  # the parent's config.json record of its spans, which an update moves
    "evaluation/report.py": {"series", "window"},  # and advice that names `scaler` window
    "workflows/tune.py": {"objective", "pruner", "refit", "storage", "study"},
    # the report page's data: its drawn `series` (a panel's, or the one series); comparison.json's `archs`, `splits`
    # and `backtest` split, and tune.json's `study`, `objective`, `pruner` and `refit`, read to draw them
    "present/page.py": {"series"},
    "runs/pages.py": {"archs", "backtest", "objective", "pruner", "refit", "series", "splits", "study"},
    # MLflow tags and params read from config.json (`arch`) and tune.json (`study`, `objective`, `trials`)
    "runs/tracking.py": {"arch", "objective", "study", "trials"},
    # Keras's names: the models' inputs (`window`, `series`) and layers, a layer's saved config, a Dropout's rate
    "artifacts/keras_file.py": {"series", "window"},
    "models/builders.py": {"combine", "conformal", "series", "series_embedding", "window"},
    "training/loop.py": {"series", "series_embedding", "window"},
    "evaluation/conformal.py": {"conformal", "distribution"},
    "evaluation/adaptive.py": {"conformal"},
    "evaluation/mc_dropout.py": {"dropout"},
    "models/heads.py": {"conformal", "distribution"},
    "models/layers.py": {"dilation", "distribution", "horizon", "residual", "scaler", "season", "transform"},
    "models/cells.py": {"output_layers", "transition_layers", "units"},
    # a registry's name for its entries (a scaler named `window`) and the default search space's parameters
    "models/distributions.py": {"distribution"},
    "models/scalers.py": {"scaler", "series", "window"},
    "models/transforms.py": {"transform"},
    "config/search.py": {"arch", "dropout", "layers", "lr", "units", "window"},
    # messages naming the option they check; the `series` column of a wide table read as a long one
    "models/spec.py": {"conformal", "distribution", "quantiles"},
    "data/sources.py": {"end", "series", "start"},
    # the recipe format (its keys are the options': `archs` under [model], the resolved recipe written back)
    "workflows/recipe.py": {"arch", "archs", "backtest", "end", "epochs", "features", "jobs", "on", "repeats",
                            "scheduler", "source", "start"},  # and [update]'s keys, `update`'s own
    # evaluate's and predict's own options, which read the data anew (`source`, `start`, `end`, `series`), and
    # make_windows' keywords beside a WindowSpec's
    "workflows/evaluate.py": {"conformal", "end", "source", "start"},
    "workflows/predict.py": {"conformal", "end", "series", "series_column", "source", "start"},  # and the layer
    "data/windows.py": {"future_features", "series_column"},
    # the command line: those, summary's window options but the splits, tune's summary, the arch choice's name
    "cli.py": {"arch", "end", "refit", "source", "split_dates", "split_steps", "splits", "start", "stride"},
}


def test_an_options_name_is_written_only_in_the_table_and_the_formats_that_share_its_word():
    import keras_seq.models.registry  # noqa: F401 - the built-in archs register their options
    from keras_seq.config.options import options

    names = {option.name for option in options()}
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module != "config/options.py" and (words := set(option_strings(path.read_text(encoding="utf-8"), names))):
            found[module] = words
    assert found == SHARED_WORDS
    assert option_strings('get_option("window")\nx["window"]\nOption("model", "cell")\n', {"window", "cell"}) == ["window"]


def same_shape_functions(sources: dict[str, str], least: int = 6) -> list[list[str]]:
    """Functions of `least` lines or more (their docstrings aside) whose code is the same once every name and
    string is blanked: copies, renamed or not. (The `duplicates` tool finds shorter and partial runs too; this is
    the part CI can check.)"""
    def code(function):
        return function.body[1:] if ast.get_docstring(function) else function.body

    def shape(function):
        body = copy.deepcopy(ast.Module(body=code(function), type_ignores=[]))
        for node in ast.walk(body):
            if isinstance(node, ast.Name):
                node.id = "_"
            elif isinstance(node, ast.arg):
                node.arg = "_"
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                node.value = "_"
        return ast.dump(body, include_attributes=False)

    found = collections.defaultdict(list)
    for where, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and code(node) \
                    and code(node)[-1].end_lineno - code(node)[0].lineno + 1 >= least:
                found[shape(node)].append(f"{where}:{node.lineno} {node.name}")
    return [places for places in found.values() if len(places) > 1]


def test_no_two_functions_in_keras_seq_are_copies():
    sources = {path.relative_to(PACKAGE).as_posix(): path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}
    assert same_shape_functions(sources) == []
    body = ("    total = 0\n    for value in values:\n        total += value * 2\n        print(value)\n"
            "    if total > 10:\n        return total\n    return None\n")
    copies = {"a.py": f"def add(values):\n{body}", "b.py": f"def other(items):\n{body.replace('value', 'item')}",
              "c.py": "def short(values):\n    return values\n"}
    assert same_shape_functions(copies) == [["a.py:1 add", "b.py:1 other"]]
