"""The verbs: fit, evaluate, compare, tune, run (recipes), predict and summary, each a thin workflow over the
layers below (config, data, models, training, evaluation, runs, artifacts, jobs). None imports another."""
