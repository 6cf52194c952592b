# %% [markdown]
# # A results folder at a glance
# Loads `runs.csv` and `summary.csv` of a peergrid results folder and plots every
# metric's mean with its 95% confidence interval against the first swept parameter.

# %%
import os
import sys

import pandas as pd

folder = os.environ.get("PEERGRID_RESULTS", "results/quickstart")
runs = pd.read_csv(os.path.join(folder, "runs.csv"))
summary = pd.read_csv(os.path.join(folder, "summary.csv"))
print(runs.shape, summary.shape)

# %%
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

params = [c for c in summary.columns[2 : summary.columns.get_loc("metric")]]
x = params[0]
series = params[1] if len(params) > 1 else None
for metric in ["success_rate", "first_hit_latency_p95_ms", "messages_per_query", "max_node_load"]:
    data = summary[summary.metric == metric]
    fig, ax = plt.subplots()
    for name, group in data.groupby(series) if series else [(metric, data)]:
        ax.errorbar(group[x], group["mean"], yerr=[group["mean"] - group["ci95_low"], group["ci95_high"] - group["mean"]], label=str(name), marker="o")
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.legend()
    fig.savefig(os.path.join(folder, f"notebook_{metric}.png"))
sys.stdout.write("done\n")
