"""One self-contained HTML page of a run: every script inline (Plotly's, and the page's own), no network.

Plotly (the `report` extra) draws the charts: zoom, pan and hover come with
it, bands are a filled pair of lines, and its JavaScript bundle is written
into the page, so the page opens from a file on a machine without internet.
Every name that comes from the data (series, columns, options) reaches the
page only as JSON inside a `<script type="application/json">` element, with
`<`, `>` and `&` escaped, and is set as text (`textContent`), never parsed as
HTML: a series named `<script>...` shows as that text.
"""

from __future__ import annotations

import html
import json

PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 12px; }
.chart { width: 100%; height: 430px; }
.small { height: 320px; }
label { font-size: 14px; }
"""

# The page's own script: it reads the data element, fills the series selector as text and draws with Plotly.
PAGE_SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const select = document.getElementById("series");
  data.series.forEach(function (item, k) {
    const option = document.createElement("option");
    option.value = String(k);
    option.textContent = item.name;
    select.appendChild(option);
  });
  document.getElementById("selector").hidden = data.series.length < 2;
  function bands(item) {
    const traces = [], levels = data.levels, n = levels.length;
    for (let j = 0; j < Math.floor(n / 2); j++) {
      const coverage = Math.round(100 * (levels[n - 1 - j] - levels[j]));
      traces.push({x: item.dates, y: item.bands[j], mode: "lines", line: {width: 0}, showlegend: false,
                   hoverinfo: "skip", name: ""});
      traces.push({x: item.dates, y: item.bands[n - 1 - j], mode: "lines", line: {width: 0}, fill: "tonexty",
                   fillcolor: "rgba(31,119,180," + (0.12 + 0.1 * j) + ")", name: coverage + "% interval"});
    }
    return traces;
  }
  function draw() {
    const item = data.series[Number(select.value || 0)];
    const traces = (item.bands ? bands(item) : []).concat([
      {x: item.actual_dates, y: item.actual, mode: "lines", name: "actual", line: {color: "black", width: 1.4}},
      {x: item.dates, y: item.baseline, mode: "lines", name: data.baseline + " (best baseline)",
       line: {color: "grey", dash: "dash", width: 1}},
      {x: item.dates, y: item.model, mode: "lines", name: data.name + " forecast", line: {color: "#d62728"}}]);
    const title = item.name + (item.skill === null || item.skill === undefined ? "" :
                               ": skill vs its persistence " + item.skill.toFixed(3));
    Plotly.react("forecast", traces, {title: {text: title}, margin: {t: 40}, hovermode: "x unified",
                                      legend: {orientation: "h"}}, {responsive: true});
    document.getElementById("forecast").dataset.series = item.name;
  }
  select.addEventListener("change", draw);
  let wanted = "";
  try { wanted = decodeURIComponent((location.hash.match(/series=([^&]*)/) || [])[1] || ""); } catch (e) { }
  const found = data.series.findIndex(function (item) { return item.name === wanted; });
  draw();
  if (found > 0) {  // as a reader's choice in the selector would
    select.value = String(found);
    select.dispatchEvent(new Event("change"));
  }
  const epochs = (data.history.loss || []).map(function (_, k) { return k + 1; });
  Plotly.newPlot("loss", Object.keys(data.history).map(function (key) {
    return {x: epochs, y: data.history[key], mode: "lines+markers", name: key};
  }), {title: {text: "loss per epoch (normalized units)"}, margin: {t: 40}, xaxis: {title: {text: "epoch"}}},
  {responsive: true});
  const skilled = data.series.filter(function (item) { return item.skill !== null && item.skill !== undefined; });
  if (skilled.length > 1) {
    Plotly.newPlot("skill", [{type: "bar", orientation: "h", x: skilled.map(function (i) { return i.skill; }),
                              y: skilled.map(function (i) { return i.name; }), name: "skill"}],
                   {title: {text: "each series' skill vs its persistence (right of 0: better)"}, margin: {t: 40,
                    l: 140}}, {responsive: true});
  } else {
    document.getElementById("skill").hidden = true;
  }
  document.body.dataset.drawn = "yes";
})();
"""


def json_for_script(value) -> str:
    """`value` as JSON that cannot close the script element it sits in (`<`, `>`, `&` escaped as \\u codes).

    Example:
    >>> json_for_script({"name": "</script><b>"})
    '{"name": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e"}'
    """
    text = json.dumps(value, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _head(title: str) -> str:
    """The page's head and title: a policy that fetches nothing, a recorder of script errors (`data-errors` on the
    document, for tests and readers), Plotly's bundle inline."""
    from plotly.offline import get_plotlyjs

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:">
<title>{html.escape(title)}</title>
<style>{PAGE_STYLE}</style>
<script>window.addEventListener("error", function (e) {{
  document.documentElement.dataset.errors = (document.documentElement.dataset.errors || "") + e.message + "; ";
}});</script>
<script>{get_plotlyjs()}</script>
</head><body>
<h1>{html.escape(title)}</h1>"""


def run_page(content: dict) -> str:
    """The page of one run: `content` holds its title, metrics table (text), history, drawn series (each with its
    dates, actual values, model and baseline forecasts and bands), the best baseline's name, the band levels and
    the run's options."""
    data = {"name": content["title"].split(":")[0], "series": content["series"], "history": content["history"],
            "baseline": content["baseline"], "levels": content["levels"]}
    options = "\n".join(f"[{section}] " + ", ".join(f"{key} = {json.dumps(value, default=str)}"
                                                    for key, value in values.items())
                        for section, values in content["options"].items())
    return f"""{_head(content["title"])}
<h2>Test metrics beside the baselines</h2>
<pre id="metrics">{html.escape(content["table"])}</pre>
<h2>Forecasts</h2>
<p id="selector"><label for="series">series </label><select id="series"></select></p>
<div id="forecast" class="chart"></div>
<h2>Training</h2>
<div id="loss" class="chart small"></div>
<div id="skill" class="chart"></div>
<h2>Options</h2>
<pre id="options">{html.escape(options)}</pre>
<script id="report-data" type="application/json">{json_for_script(data)}</script>
<script>{PAGE_SCRIPT}</script>
</body></html>
"""


# A page of blocks, each a text or a chart, built from the data element by this script (names set as text).
BLOCKS_SCRIPT = """
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const main = document.getElementById("blocks");
  data.blocks.forEach(function (block, k) {
    const heading = document.createElement("h2");
    heading.textContent = block.title;
    main.appendChild(heading);
    if (block.kind === "text") {
      const text = document.createElement("pre");
      text.textContent = block.text;
      main.appendChild(text);
    } else {
      const chart = document.createElement("div");
      chart.id = "chart-" + k;
      chart.className = "chart";
      main.appendChild(chart);
      Plotly.newPlot(chart, block.traces, Object.assign({margin: {t: 30}, hovermode: "closest"}, block.layout),
                     {responsive: true});
    }
  });
  document.body.dataset.drawn = "yes";
})();
"""


def blocks_page(title: str, blocks: list) -> str:
    """A page of `blocks`: each `{"kind": "text", "title", "text"}` or `{"kind": "chart", "title", "traces",
    "layout"}` (Plotly's trace and layout objects)."""
    return f"""{_head(title)}
<div id="blocks"></div>
<script id="report-data" type="application/json">{json_for_script({"blocks": blocks})}</script>
<script>{BLOCKS_SCRIPT}</script>
</body></html>
"""
