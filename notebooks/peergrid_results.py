"""Helpers the peergrid notebooks share: finding a results folder, reading sweep
values (plain numbers, rates such as `100/s`, durations such as `250ms`) as numbers,
with the units of peergrid's scenario files, and saving figures."""

import math
import re
from pathlib import Path


# In Jupyter a saved figure is also shown inline; as a plain script it is not.
try:
    from IPython import get_ipython
    from IPython.display import Image, display

    IN_NOTEBOOK = get_ipython() is not None
except ImportError:
    IN_NOTEBOOK = False


def save_figure(fig, path: Path) -> Path:
    """Writes `fig` to `path` as a PNG, closes it, and shows it when in Jupyter."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=150)
    plt.close(fig)
    print(f"wrote {path}")
    if IN_NOTEBOOK:
        display(Image(filename=str(path)))
    return path


def locate(path: str) -> Path:
    """The results folder `path`: taken from the working directory, or else from the
    nearest parent folder that has it (Jupyter runs a notebook from `notebooks/`)."""
    given = Path(path).expanduser()
    if given.is_absolute() or given.exists():
        return given
    for parent in Path.cwd().resolve().parents:
        if (parent / given).exists():
            return parent / given
    return given


SECONDS_PER_UNIT = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0,
    "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
}
DURATION = re.compile(r"^\s*([0-9][0-9_.eE+]*?)\s*([a-zµ]+)\s*$")


def duration_seconds(text: str) -> float:
    """'250ms' -> 0.25; NaN if `text` is not a duration."""
    match = DURATION.match(text)
    if not match or match.group(2) not in SECONDS_PER_UNIT:
        return math.nan
    try:
        return float(match.group(1).replace("_", "")) * SECONDS_PER_UNIT[match.group(2)]
    except ValueError:
        return math.nan


def to_number(text: str) -> float:
    """A sweep value as a number: plain number, rate per second, or duration in seconds."""
    text = str(text).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if "/" in text:
        count, per = (part.strip() for part in text.split("/", 1))
        # "100/s" is per one second; "5/10s" is per ten seconds.
        period = duration_seconds(per if per[:1].isdigit() else "1" + per)
        try:
            return float(count) / period if period > 0 else math.nan
        except ValueError:
            return math.nan
    return duration_seconds(text)
