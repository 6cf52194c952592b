# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # One peergrid results folder
#
# `peergrid run scenarios/NAME.toml` writes a results folder: `runs.csv` (one row per
# run), `summary.csv` (mean and Student-t 95% confidence interval per sweep point and
# metric), `timeseries.csv` (per run, one row every `sample_every`) and `run.json`
# (provenance and the scenario's `[[plot]]` list).
#
# This notebook
#
# 1. loads the four files and checks that `summary.csv` agrees with `runs.csv`;
# 2. prints success rate and 95th-percentile first-hit latency per sweep point;
# 3. redraws every plot that `run.json` lists: mean with 95% confidence bars, one
#    line per series value;
# 4. draws success rate and the longest service queue over simulated time, one line
#    per sweep point (replicate 0).
#
# The folder comes from the environment variable `PEERGRID_RESULTS` (unset or empty:
# `results/quickstart`). Figures are written as PNG to `<folder>/notebook/`.

# %%
import json
import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: every figure goes to a PNG file
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)

# %% [markdown]
# ## The folder
#
# A relative path is taken from the working directory, or else from the nearest
# parent folder that has it, so the default also works when Jupyter runs the notebook
# from `notebooks/`.


# %%
import sys

# Shared helpers live in notebooks/peergrid_results.py (on PYTHONPATH when CI runs the
# notebooks; found from the working directory otherwise).
for _folder in [Path.cwd(), *Path.cwd().resolve().parents]:
    for _candidate in (_folder, _folder / "notebooks"):
        if (_candidate / "peergrid_results.py").is_file() and str(_candidate) not in sys.path:
            sys.path.insert(0, str(_candidate))
from peergrid_results import duration_seconds, locate, save_figure, to_number  # noqa: E402

RESULTS = locate(os.environ.get("PEERGRID_RESULTS") or "results/quickstart")
if not (RESULTS / "summary.csv").is_file():
    raise FileNotFoundError(f"{RESULTS} is not a peergrid results folder (no summary.csv)")

# This notebook's own output folder. Old figures are removed so that it holds exactly
# the figures of this execution.
OUT = RESULTS / "notebook"
OUT.mkdir(exist_ok=True)
for old in OUT.glob("*.png"):
    old.unlink()
print(f"results folder: {RESULTS}")
print(f"figures go to:  {OUT}")

# %% [markdown]
# ## Loading
#
# Every cell is read as text first, so that parameter values keep their spelling
# (`100/s`, `250ms`, `central`) and an empty cell stays empty: an empty cell means
# *undefined* (a parameter that does not apply to a protocol, a metric with no
# value). Measured columns are then converted to numbers, empty cells becoming NaN.


# %%
def read_text_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def to_numbers(column: pd.Series) -> pd.Series:
    """Numbers from text; empty cells become NaN, anything else unparsable is an error."""
    return pd.to_numeric(column.where(column != "", np.nan))


summary = read_text_csv(RESULTS / "summary.csv")
# The swept parameters are exactly the columns between "point" and "metric".
columns = list(summary.columns)
params = columns[columns.index("point") + 1 : columns.index("metric")]
summary["point"] = to_numbers(summary["point"]).astype(int)
for c in ["mean", "std", "ci95_low", "ci95_high", "n"]:
    summary[c] = to_numbers(summary[c])

runs = read_text_csv(RESULTS / "runs.csv")
# runs.csv: scenario, point, <parameters>, replicate, seed, then one column per metric.
# The seed is a 64-bit unsigned integer and is kept as text.
metrics = list(runs.columns[list(runs.columns).index("seed") + 1 :])
runs["point"] = to_numbers(runs["point"]).astype(int)
runs["replicate"] = to_numbers(runs["replicate"]).astype(int)
for c in metrics:
    runs[c] = to_numbers(runs[c])

timeseries_path = RESULTS / "timeseries.csv"
if timeseries_path.is_file():
    timeseries = read_text_csv(timeseries_path)
    for c in timeseries.columns.drop("scenario"):
        timeseries[c] = to_numbers(timeseries[c])
else:
    timeseries = None

with open(RESULTS / "run.json", encoding="utf-8") as f:
    run_info = json.load(f)
plots = run_info.get("plots") or []

print(f"scenario {run_info.get('scenario')!r}: {runs['point'].nunique()} sweep points, "
      f"{len(runs)} runs, {len(metrics)} metrics")
print(f"swept parameters: {', '.join(params) if params else '(none)'}")
if run_info.get("columns") is not None and list(run_info["columns"]) != params:
    print(f"note: run.json lists the parameters {run_info['columns']}, summary.csv has {params}")
print(f"plots listed in run.json: {len(plots)}")
print(f"timeseries.csv: {'missing' if timeseries is None else f'{len(timeseries)} rows'}")

# %% [markdown]
# ## Consistency of summary.csv with runs.csv
#
# `summary.csv` is computed from `runs.csv`. Recomputing each point's mean and count
# catches a folder whose files come from different runs (an interrupted or partly
# copied folder). A metric with no value at a point (all cells empty) has no summary
# row, so the two must also agree on which (point, metric) pairs exist.

# %%
long_runs = runs.melt(id_vars=["point"], value_vars=metrics, var_name="metric", value_name="value")
recomputed = (
    long_runs.dropna(subset=["value"])
    .groupby(["point", "metric"])["value"]
    .agg(mean_runs="mean", n_runs="count")
)
check = summary.set_index(["point", "metric"])[["mean", "n"]].join(recomputed, how="outer")
agrees = np.isclose(check["mean"], check["mean_runs"], rtol=1e-9, atol=1e-12) & (
    check["n"] == check["n_runs"]
)
if not agrees.all():
    print(check[~agrees].to_string())
    raise AssertionError(f"summary.csv disagrees with runs.csv in {int((~agrees).sum())} rows (above)")
print(f"summary.csv agrees with runs.csv ({len(check)} point-metric pairs)")

# %% [markdown]
# ## Success rate and tail latency per sweep point
#
# Each cell is `mean [95% CI]` over the replicates; a point with a single replicate
# has no interval.

# %%
TABLE_METRICS = ["success_rate", "first_hit_latency_p95_ms"]


def mean_with_ci(row: pd.Series) -> str:
    if pd.isna(row["mean"]):
        return ""
    if pd.isna(row["ci95_low"]) or pd.isna(row["ci95_high"]):
        return f"{row['mean']:.4g}"
    return f"{row['mean']:.4g} [{row['ci95_low']:.4g}, {row['ci95_high']:.4g}]"


table_rows = summary[summary["metric"].isin(TABLE_METRICS)].copy()
table_rows["cell"] = table_rows.apply(mean_with_ci, axis=1)
table = table_rows.pivot(index=["point", *params], columns="metric", values="cell")
table = table.reindex(columns=[m for m in TABLE_METRICS if m in table.columns]).fillna("")
table.columns.name = None
print(table.to_string())

# %% [markdown]
# ## Parameter values as numbers, and axis labels
#
# Sweep values are written as peergrid reads them: a plain number, a rate `N/unit`
# (per `unit`, e.g. `100/s` or `3/min`) or a duration `Nunit` (`250ms`, `10s`). On an
# axis, a rate becomes events per second and a duration becomes seconds; the units
# are those of peergrid's scenario files. Labels name the quantity and its unit, as
# in peergrid's own plots.

# %%
LABELS = {
    "success_rate": "success rate (fraction of queries)",
    "hits_per_query": "hits per query",
    "messages_per_query": "messages per query",
    "messages_total": "messages (total)",
    "maintenance_messages": "maintenance messages",
    "first_hit_latency_mean_ms": "first-hit latency, mean (ms)",
    "first_hit_latency_p50_ms": "first-hit latency, median (ms)",
    "first_hit_latency_p95_ms": "first-hit latency, 95th percentile (ms)",
    "first_hit_latency_p99_ms": "first-hit latency, 99th percentile (ms)",
    "hops_to_first_hit_mean": "hops to first hit (mean)",
    "max_node_load": "busiest node's load (messages/s)",
    "load_gini": "load Gini coefficient",
    "stale_answer_rate": "stale answers (fraction)",
    "events": "events",
    "workload.rate": "query rate (queries/s)",
    "network.nodes": "nodes",
    "protocol.ttl": "TTL (hops)",
    "network.loss": "message loss probability",
    "resources.replicas": "replicas per resource type",
    "time_s": "simulated time (s)",
    "max_queue_length": "longest service queue (messages)",
}


def label(name: str, values=()) -> str:
    """Axis label of a column; an unknown swept rate or duration gets its unit."""
    if name in LABELS:
        return LABELS[name]
    text = name.replace("_", " ")
    values = [str(v) for v in values if str(v) != ""]
    if values and all("/" in v and not math.isnan(to_number(v)) for v in values):
        return f"{text} (per s)"
    if values and all(not math.isnan(duration_seconds(v)) for v in values):
        return f"{text} (s)"
    return text


assert to_number("100/s") == 100.0 and to_number("3/min") == 0.05 and to_number("5/10s") == 0.5
assert to_number("250ms") == 0.25 and to_number("1.5min") == 90.0 and to_number("4") == 4.0
assert math.isnan(to_number("central"))

# %% [markdown]
# ## The scenario's plots
#
# One figure per `[[plot]]` entry of the scenario, drawn from `summary.csv` the way
# `peergrid plot` draws it: the mean at each sweep point with its 95% confidence
# interval as error bars, one line per value of `series`. Parameters other than `x`
# and `series` that take more than one value at the plotted points split the lines
# further and appear in the legend as `name=value`. An x value that is not a number
# (e.g. a protocol name) is placed on a categorical axis in order of appearance.

# %%
written: list[Path] = []


def save(fig, stem: str) -> Path:
    """Writes `fig` to OUT/stem.png, closes it, and shows it when in Jupyter."""
    path = save_figure(fig, OUT / f"{stem}.png")
    written.append(path)
    return path


def line_label(row: pd.Series, series, others) -> str:
    """Legend entry of a summary row: the series value, then other varying parameters."""
    parts = []
    if series:
        parts.append(row[series] if row[series] != "" else f"{series} unset")
    parts += [f"{c}={row[c]}" for c in others if row[c] != ""]
    return ", ".join(parts)


def draw_plot(spec: dict):
    x, y, series = spec["x"], spec["y"], spec.get("series")
    rows = summary[(summary["metric"] == y) & summary["mean"].notna()].copy()
    unknown = [c for c in (x, series) if c and c not in params]
    if unknown:
        print(f"skipped {y} vs {x}: {unknown} not among the swept parameters {params}")
        return None
    if rows.empty:
        print(f"skipped {y} vs {x}: summary.csv has no values of {y}")
        return None

    # x positions: numbers where every value converts, else categories in order.
    rows["x"] = rows[x].map(to_number)
    categories = None
    if rows["x"].isna().any():
        categories = list(dict.fromkeys(rows[x]))
        rows["x"] = rows[x].map(categories.index).astype(float)

    others = [
        c for c in params
        if c not in (x, series) and rows.loc[rows[c] != "", c].nunique() > 1
    ]
    rows["line"] = rows.apply(line_label, axis=1, series=series, others=others)

    fig, ax = plt.subplots(figsize=(8, 5.6), layout="constrained")
    for name, line in rows.groupby("line", sort=False):
        line = line.sort_values("x")
        # A point with a single replicate has no interval: no bar.
        low = line["ci95_low"].fillna(line["mean"])
        high = line["ci95_high"].fillna(line["mean"])
        mean = line["mean"].to_numpy()
        ax.errorbar(
            line["x"].to_numpy(), mean,
            yerr=[mean - low.to_numpy(), high.to_numpy() - mean],
            marker="o", markersize=4, capsize=3, linewidth=1.5,
            label=name or None,
        )

    if spec.get("logx"):
        ax.set_xscale("log")
    if spec.get("logy"):
        ax.set_yscale("log")  # non-positive values and bar ends are clipped
    if categories is not None:
        ax.set_xticks(range(len(categories)), categories)
    ax.set_xlabel(label(x, rows[x]))
    ax.set_ylabel(label(y))
    ax.set_title(spec.get("title") or f"{label(y)} vs {label(x, rows[x])}")
    ax.grid(True, which="major", alpha=0.3)
    if any(rows["line"] != ""):
        ax.legend(title=series)
    return save(fig, f"{y}_vs_{x.replace('.', '_')}")


if not plots:
    print("run.json lists no plots")
for spec in plots:
    draw_plot(spec)

# %% [markdown]
# ## Over simulated time
#
# `timeseries.csv` samples each run every `sample_every` of simulated time. For
# replicate 0 of every sweep point: the fraction of queries issued in the interval
# that found a hit, and the longest service queue of any node at the sample. A queue
# that grows without bound marks a saturated node; the queue axis is logarithmic
# above 1 (symlog) so that short and runaway queues are both readable. An interval
# in which no query was issued has no success rate (a gap in its line).


# %%
def point_labels() -> dict:
    """Sweep point -> its parameter values, naming only parameters that vary."""
    points = summary.drop_duplicates("point").set_index("point")[params]
    varying = [c for c in params if points.loc[points[c] != "", c].nunique() > 1]
    labels = {}
    for point, row in points.iterrows():
        text = ", ".join(f"{c}={row[c]}" for c in varying if row[c] != "")
        labels[point] = text or f"point {point}"
    return labels


if timeseries is None or timeseries.empty:
    print("no timeseries.csv: nothing to draw over time")
else:
    first = timeseries[timeseries["replicate"] == timeseries["replicate"].min()]
    replicate = int(first["replicate"].iloc[0])
    names = point_labels()
    lines = list(first.groupby("point"))
    # Up to 10 points get the default distinct colours; more points share a colour ramp.
    colours = (
        [f"C{i}" for i in range(len(lines))]
        if len(lines) <= 10
        else [plt.cm.viridis(i / (len(lines) - 1)) for i in range(len(lines))]
    )
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 8), layout="constrained")
    for (point, g), colour in zip(lines, colours):
        g = g.sort_values("time_s")
        top.plot(g["time_s"], g["success_rate"], marker=".", color=colour, label=names.get(point, point))
        bottom.plot(g["time_s"], g["max_queue_length"], marker=".", color=colour)
    top.set_ylabel(label("success_rate"))
    top.set_title(f"{run_info.get('scenario', '')}: over simulated time (replicate {replicate})")
    bottom.set_ylabel(label("max_queue_length"))
    bottom.set_yscale("symlog", linthresh=1)
    bottom.set_xlabel(label("time_s"))
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2, fontsize="small")
    save(fig, "timeseries")

# %% [markdown]
# ## Written figures

# %%
for path in written:
    print(path.name)
assert written, f"no figure was written to {OUT}"
