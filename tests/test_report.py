"""keras-seq report: one self-contained page, opened in a real headless Chromium (Debian's `chromium`, installed
here with apt-get where it is missing, as CI runs as root)."""

import re

import numpy as np
import pandas as pd
import pytest

from conftest import open_page

pytestmark = pytest.mark.slow

HOSTILE = "<script>alert(1)</script>"


def test_a_panel_runs_page_draws_in_chromium_escapes_names_and_its_selector_changes_the_chart(
        chromium, run_cli, write_csv, tmp_path):
    from matplotlib.image import imread

    rng = np.random.default_rng(0)
    dates = pd.date_range("2018-01-01", periods=150, freq="D")
    names = ["north", HOSTILE, "south"]
    rows = [f"{n},{d:%Y-%m-%d},{100 + 10 * k + 5 * np.sin(t / 7) + rng.normal():.3f}\n"
            for k, n in enumerate(names) for t, d in enumerate(dates)]
    path = write_csv("series,date,value\n" + "".join(rows))
    code, _, err = run_cli("fit", "--data", path, "--series-column", "series", "--target", "value", "--window", "8",
                           "--units", "4", "--layers", "1", "--epochs", "2", "--quantiles", "0.1,0.5,0.9",
                           "--out", tmp_path / "runs", "-q", "--report")
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "report.html").is_file()  # fit --report
    code, out, err = run_cli("report", run, "--out", tmp_path / "page.html")
    assert code == 0 and f"report written to {tmp_path / 'page.html'}" in out, err
    page = tmp_path / "page.html"
    text = page.read_text()
    assert re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", text) is None  # every script inline
    assert "default-src 'none'" in text  # and the page may fetch nothing
    assert HOSTILE not in text  # the name reaches the page as escaped JSON only

    dom = open_page(chromium, page, "--dump-dom")
    assert 'data-drawn="yes"' in dom and "data-errors" not in dom  # every script ran, none failed
    assert HOSTILE not in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text, never run
    first = dom.split('id="forecast"')[1].split(">")[0]
    chosen = open_page(chromium, page, "--dump-dom", fragment="#series=south").split('id="forecast"')[1].split(">")[0]
    assert first != chosen and 'data-series="south"' in chosen  # the selector's change redraws the chart

    open_page(chromium, page, f"--screenshot={tmp_path / 'shot.png'}", "--window-size=1200,1400")
    pixels = imread(tmp_path / "shot.png")[..., :3]
    chart = pixels[250:800, 50:1150]  # below the metrics table: the forecast chart
    assert (np.abs(chart - 1.0).sum(axis=-1) > 0.3).mean() > 0.01  # drawn lines, not a blank area

    code, _, err = run_cli("report", tmp_path)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "is not a run" in err


def test_a_recipe_with_track_report_writes_each_experiments_page(chromium, run_cli, tmp_path, monkeypatch):
    recipe = tmp_path / "r.toml"
    recipe.write_text('description = "A page per experiment."\n[data]\nstart = 2022-06-01\n[windows]\nwindow = 8\n'
                      '[model]\narchs = ["gru"]\nunits = 4\nlayers = 1\n[train]\nepochs = 1\n[track]\nreport = true\n')
    code, out, err = run_cli("run", recipe, "--out", tmp_path / "out", "-q")
    assert code == 0, err
    (page,) = (tmp_path / "out").glob("*/main/report.html")
    dom = open_page(chromium, page, "--dump-dom")
    assert 'data-drawn="yes"' in dom and "data-errors" not in dom and "gru" in dom
    assert "[track]\nreport = true" in next((tmp_path / "out").glob("*/recipe.toml")).read_text()

    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "plotly" else found(name, *a))
    for args in (("report", page.parent), ("run", recipe, "--out", tmp_path / "again")):  # without the extra
        code, _, err = run_cli(*args)
        assert code != 0 and "pip install 'keras-seq[report]'" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "again").exists()
