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
# # Two peergrid results folders, A against B
#
# Compares the `summary.csv` of two results folders, for example the same scenario
# before and after a change to a protocol, or under two seeds. Rows are matched on
# the swept parameters that both folders have, and on the metric. For every matched
# (parameters, metric) pair the notebook reports B − A, the relative difference
# (B − A) / |A|, and whether the two 95% confidence intervals overlap; disjoint
# intervals flag a difference beyond replicate noise. This is a screening rule
# rather than a formal test: overlapping intervals do not prove two means equal.
#
# Folders come from the environment variables `PEERGRID_A` and `PEERGRID_B` (both
# default to `results/quickstart`, which compares a folder with itself: every
# difference is then zero). Figures are written as PNG to `<A>/compare/`.

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

# The metric drawn in the figure, when both folders have it.
FIGURE_METRIC = "first_hit_latency_p95_ms"

# %% [markdown]
# ## The folders
#
# A relative path is taken from the working directory, or else from the nearest
# parent folder that has it (Jupyter runs a notebook from `notebooks/`).


# %%
import sys

# Shared helpers live in notebooks/peergrid_results.py (on PYTHONPATH when CI runs the
# notebooks; found from the working directory otherwise).
for _folder in [Path.cwd(), *Path.cwd().resolve().parents]:
    for _candidate in (_folder, _folder / "notebooks"):
        if (_candidate / "peergrid_results.py").is_file() and str(_candidate) not in sys.path:
            sys.path.insert(0, str(_candidate))
from peergrid_results import locate, save_figure, to_number  # noqa: E402

A = locate(os.environ.get("PEERGRID_A") or "results/quickstart")
B = locate(os.environ.get("PEERGRID_B") or "results/quickstart")
for folder in (A, B):
    if not (folder / "summary.csv").is_file():
        raise FileNotFoundError(f"{folder} is not a peergrid results folder (no summary.csv)")

OUT = A / "compare"
OUT.mkdir(exist_ok=True)
for old in OUT.glob("*.png"):  # this notebook's own folder: keep only this execution's figures
    old.unlink()


def scenario_name(folder: Path) -> str:
    try:
        with open(folder / "run.json", encoding="utf-8") as f:
            return json.load(f).get("scenario") or folder.name
    except (OSError, ValueError):
        return folder.name


NAME_A, NAME_B = f"A ({scenario_name(A)})", f"B ({scenario_name(B)})"
print(f"{NAME_A}: {A}")
print(f"{NAME_B}: {B}")
print(f"figures go to: {OUT}")

# %% [markdown]
# ## Loading
#
# Cells are read as text so that parameter values keep their spelling (`100/s`) and
# an empty cell (a parameter that does not apply at that point) stays empty; the
# statistics are then converted to numbers. The swept parameters of a folder are
# exactly the columns of its `summary.csv` between `point` and `metric`.


# %%
def load_summary(folder: Path):
    summary = pd.read_csv(folder / "summary.csv", dtype=str, keep_default_na=False)
    columns = list(summary.columns)
    params = columns[columns.index("point") + 1 : columns.index("metric")]
    for c in ["mean", "std", "ci95_low", "ci95_high", "n"]:
        summary[c] = pd.to_numeric(summary[c].where(summary[c] != "", np.nan))
    return summary, params


summary_a, params_a = load_summary(A)
summary_b, params_b = load_summary(B)
shared = [c for c in params_a if c in params_b]
print(f"parameters of A: {params_a or '(none)'}")
print(f"parameters of B: {params_b or '(none)'}")
print(f"matched on:      {shared or '(no shared parameter)'}")

# %% [markdown]
# ## Matching rows
#
# Parameter values are compared as numbers where they are numbers, rates or
# durations (so `100/s` matches `100/1s`, and `0.25s` matches `250ms`), and as text
# otherwise.
#
# A folder may sweep a parameter that the other does not have. Its rows that differ
# only in such a parameter are **pooled** into one row per matched key: the mean of
# their means, with the 95% half-width of that average, √(Σ hᵢ²) / k for k rows of
# half-width hᵢ (independent points; each interval is symmetric). When the folders
# share no parameter, or share parameters but no value in common, every point of a
# folder is pooled: the comparison is then per metric, over the folders' overall
# means. A row without an interval (a single replicate) makes its pooled row's
# interval undefined.

# %%
def match_value(text: str) -> str:
    """The value a parameter is matched on: a canonical number, or the text itself."""
    number = to_number(text)
    return text if math.isnan(number) else f"{number:.12g}"


def key_column(param: str) -> str:
    return f"key:{param}"


def pool(summary: pd.DataFrame, keys: list) -> pd.DataFrame:
    """One row per (keys, metric), pooling rows that differ in other parameters."""
    df = summary.copy()
    for c in keys:
        df[key_column(c)] = df[c].map(match_value)
    df["half"] = (df["ci95_high"] - df["ci95_low"]) / 2
    df["order"] = np.arange(len(df))  # to restore the folder's row order after the join
    by = [key_column(c) for c in keys] + ["metric"]
    pooled = df.groupby(by, sort=False).agg(
        **{c: (c, "first") for c in keys},  # the values as spelled, for display
        mean=("mean", "mean"),
        half=("half", lambda h: np.sqrt((h**2).sum()) / len(h) if h.notna().all() else np.nan),
        points=("mean", "size"),
        runs=("n", "sum"),
        order=("order", "min"),
    )
    pooled["ci95_low"] = pooled["mean"] - pooled["half"]
    pooled["ci95_high"] = pooled["mean"] + pooled["half"]
    return pooled.reset_index()


def join(keys: list) -> pd.DataFrame:
    """A and B pooled on `keys` and joined on (keys, metric); `side` tells where a row is."""
    by = [key_column(c) for c in keys] + ["metric"]
    joined = pool(summary_a, keys).merge(
        pool(summary_b, keys), on=by, how="outer", suffixes=("_A", "_B"), indicator="side"
    )
    # An outer join sorts its keys as text; go back to A's order (then B's).
    return joined.sort_values(["order_A", "order_B"], na_position="last").reset_index(drop=True)


keys = shared
joined = join(keys)
if keys and not (joined["side"] == "both").any():
    print(f"A and B share {keys} but no value of them in common: comparing overall means")
    keys = []
    joined = join(keys)
for c in params_a:
    if c not in keys:
        print(f"pooled in A over {c}")
for c in params_b:
    if c not in keys:
        print(f"pooled in B over {c}")

pairs = joined[joined["side"] == "both"].copy()
# Parameter values as spelled in A (B's spelling matches up to number format).
for c in keys:
    pairs[c] = pairs[f"{c}_A"]
only_a = joined[joined["side"] == "left_only"]
only_b = joined[joined["side"] == "right_only"]
print(f"{len(pairs)} (parameters, metric) pairs in both; "
      f"{len(only_a)} only in A, {len(only_b)} only in B")
if only_a["metric"].nunique() or only_b["metric"].nunique():
    missing_b = sorted(set(only_a["metric"]) - set(pairs["metric"]))
    missing_a = sorted(set(only_b["metric"]) - set(pairs["metric"]))
    if missing_b:
        print(f"metrics only in A: {missing_b}")
    if missing_a:
        print(f"metrics only in B: {missing_a}")
assert len(pairs), "A and B have no metric in common"

# %% [markdown]
# ## Differences
#
# Per pair: `diff` = B − A, `rel` = (B − A) / |A| (zero when the means are equal,
# undefined when A is zero and B is not), and whether the 95% intervals overlap
# (undefined when either side has no interval).

# %%
pairs["diff"] = pairs["mean_B"] - pairs["mean_A"]
with np.errstate(divide="ignore", invalid="ignore"):
    rel = pairs["diff"] / pairs["mean_A"].abs()
pairs["rel"] = rel.where(pairs["diff"] != 0, 0.0).replace([np.inf, -np.inf], np.nan)
has_ci = pairs[["ci95_low_A", "ci95_high_A", "ci95_low_B", "ci95_high_B"]].notna().all(axis=1)
overlap = (pairs["ci95_low_A"] <= pairs["ci95_high_B"]) & (pairs["ci95_low_B"] <= pairs["ci95_high_A"])
pairs["ci"] = np.where(~has_ci, "n/a", np.where(overlap, "overlap", "disjoint"))
pairs["significant"] = has_ci & ~overlap

# Per metric: how many matched rows it has, the average of each side's means over
# them, the average difference, the relative difference of the averages, the largest
# relative difference of a single row, and how many rows have disjoint intervals or
# no interval.
by_metric = pairs.groupby("metric", sort=False).agg(
    pairs=("diff", "size"),
    mean_A=("mean_A", "mean"),
    mean_B=("mean_B", "mean"),
    mean_diff=("diff", "mean"),
    max_abs_rel=("rel", lambda r: r.abs().max()),
    disjoint=("significant", "sum"),
    no_ci=("ci", lambda s: int((s == "n/a").sum())),
)
with np.errstate(divide="ignore", invalid="ignore"):
    rel_of_means = by_metric["mean_diff"] / by_metric["mean_A"].abs()
by_metric.insert(4, "rel_diff", rel_of_means.where(by_metric["mean_diff"] != 0, 0.0))
by_metric["rel_diff"] = by_metric["rel_diff"].replace([np.inf, -np.inf], np.nan)
print(by_metric.to_string(float_format=lambda v: f"{v:.4g}"))

# %% [markdown]
# ## Metrics that differ beyond the confidence intervals

# %%
def with_ci(mean: float, low: float, high: float) -> str:
    if pd.isna(low) or pd.isna(high):
        return f"{mean:.4g}"
    return f"{mean:.4g} [{low:.4g}, {high:.4g}]"


if (pairs["diff"] == 0).all():
    print("A and B agree exactly: every matched mean is identical.")

significant = pairs[pairs["significant"]].copy()
if significant.empty:
    print("No metric differs significantly: every pair of 95% intervals overlaps "
          "(or has no interval).")
else:
    significant["A"] = [with_ci(*r) for r in significant[["mean_A", "ci95_low_A", "ci95_high_A"]].values]
    significant["B"] = [with_ci(*r) for r in significant[["mean_B", "ci95_low_B", "ci95_high_B"]].values]
    significant["rel"] = significant["rel"].map(lambda v: f"{v:+.1%}" if pd.notna(v) else "n/a")
    names = list(dict.fromkeys(significant["metric"]))
    print(f"{len(names)} metric(s) differ significantly, at {len(significant)} matched row(s):")
    print(", ".join(names))
    print()
    print(significant[["metric", *keys, "A", "B", "rel"]].to_string(index=False))

# %% [markdown]
# ## Figure
#
# Left: the metric's mean with 95% bars against a numeric shared parameter (the x
# of A's first listed plot when shared, else the first shared parameter that is a
# number at every point), A solid and B dashed, one colour per combination of the
# other shared parameters; without such a parameter, one position per matched key.
# Right: B's mean against A's at every matched key; points on the diagonal are
# unchanged. The axes of the right panel are logarithmic when all means are positive
# and span more than two decades.

# %%
metric = FIGURE_METRIC if (pairs["metric"] == FIGURE_METRIC).any() else pairs["metric"].iloc[0]
rows = pairs[pairs["metric"] == metric].copy()
print(f"figure metric: {metric}")


def numeric_param() -> str | None:
    """The parameter to put on the x axis of the left panel, if any."""
    candidates = []
    try:
        with open(A / "run.json", encoding="utf-8") as f:
            candidates += [p["x"] for p in json.load(f).get("plots") or []]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    candidates += keys
    for c in candidates:
        if c in keys and rows[c].nunique() > 1 and rows[c].map(to_number).notna().all():
            return c
    return None


def _is_plain(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


x = numeric_param()
others = [c for c in keys if c != x and rows.loc[rows[c] != "", c].nunique() > 1]
rows["line"] = [
    ", ".join(f"{c}={r[c]}" for c in others if r[c] != "") for _, r in rows.iterrows()
]
if x is not None:
    rows["x"] = rows[x].map(to_number)
else:
    # One position per matched key, in A's order.
    rows["x"] = np.arange(len(rows), dtype=float)
    ticks = [", ".join(f"{c}={r[c]}" for c in keys if r[c] != "") or "all points" for _, r in rows.iterrows()]

fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.6), layout="constrained")
offset = 0.0 if x is not None else 0.12  # side by side at a categorical position
for i, (name, line) in enumerate(rows.groupby("line", sort=False)):
    line = line.sort_values("x")
    colour = f"C{i % 10}"
    for side, style, marker, shift in (("A", "-", "o", -offset), ("B", "--", "s", offset)):
        mean = line[f"mean_{side}"].to_numpy()
        low = line[f"ci95_low_{side}"].fillna(line[f"mean_{side}"]).to_numpy()
        high = line[f"ci95_high_{side}"].fillna(line[f"mean_{side}"]).to_numpy()
        tag = NAME_A if side == "A" else NAME_B
        left.errorbar(
            line["x"].to_numpy() + shift, mean, yerr=[mean - low, high - mean],
            color=colour, linestyle=style if x is not None else "none", marker=marker,
            markersize=4, capsize=3, label=f"{tag}, {name}" if name else tag,
        )
if x is not None:
    spelled = rows[x].astype(str)
    unit = " (per s)" if spelled.str.contains("/").all() else "" if spelled.map(_is_plain).all() else " (s)"
    left.set_xlabel(x + unit)
else:
    left.set_xticks(rows["x"], ticks, rotation=30, ha="right", fontsize="small")
    left.set_xlim(-0.5, len(rows) - 0.5)
left.set_ylabel(metric)
left.set_title(f"{metric}: A and B")
left.grid(True, alpha=0.3)
left.legend(fontsize="small")

half_a = (rows["ci95_high_A"] - rows["ci95_low_A"]) / 2
half_b = (rows["ci95_high_B"] - rows["ci95_low_B"]) / 2
for i, (name, line) in enumerate(rows.groupby("line", sort=False)):
    right.errorbar(
        line["mean_A"].to_numpy(), line["mean_B"].to_numpy(),
        xerr=half_a[line.index].fillna(0).to_numpy(),
        yerr=half_b[line.index].fillna(0).to_numpy(), linestyle="none", marker="o", markersize=4,
        capsize=3, color=f"C{i % 10}", label=name or None,
    )
both = pd.concat([rows["mean_A"], rows["mean_B"]])
lo, hi = both.min(), both.max()
if lo > 0 and hi / lo > 100:
    right.set_xscale("log")
    right.set_yscale("log")
    ends = [lo / 1.2, hi * 1.2]
else:
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
    ends = [lo - pad, hi + pad]
right.plot(ends, ends, color="grey", linewidth=1, linestyle=":", label="B = A")
right.set_xlabel(f"{NAME_A} mean")
right.set_ylabel(f"{NAME_B} mean")
right.set_title(f"{metric}: B against A")
right.grid(True, alpha=0.3)
right.legend(fontsize="small")

path = save_figure(fig, OUT / f"{metric}_A_vs_B.png")
assert path.is_file()
