#!/usr/bin/env bash
# Executes the analysis notebooks headless on results folders:
#
#   .ci/notebooks.sh RESULTS_A [RESULTS_B]
#
# notebooks/analysis.py runs on RESULTS_A (and on RESULTS_B when it is another
# folder); notebooks/compare.py compares RESULTS_A with RESULTS_B (with itself when
# RESULTS_B is not given). Each notebook is converted to .ipynb with jupytext and
# executed with `jupyter nbconvert --execute`: an error in any cell fails this
# script, and so does a notebook that writes no PNG.
#
# The Python packages of notebooks/requirements.txt live in a virtual environment,
# .venv-notebooks/ at the repository root (PEERGRID_NOTEBOOK_VENV overrides the
# path). It is built on first use and rebuilt when the requirements or the
# interpreter change. Each executed notebook is kept next to its figures
# (<results>/notebook/analysis.ipynb, <A>/compare/compare.ipynb).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }
die() { echo "notebooks.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: .ci/notebooks.sh RESULTS_A [RESULTS_B]"
for folder in "$@"; do
  [ -f "$folder/summary.csv" ] || die "$folder is not a results folder (no summary.csv)"
done
# Absolute paths: the kernel runs in a temporary folder, not here.
results_a=$(cd "$1" && pwd)
results_b=$(cd "${2:-$1}" && pwd)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step "python environment"
command -v python3 >/dev/null 2>&1 || die "python3 is missing"
# `python3 -m venv` needs ensurepip, which Debian ships apart, in python3-venv.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "python3 cannot create virtual environments (no ensurepip)"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "python3-venv is missing and this user cannot install it"
    sudo="sudo -n"  # no password prompt: CI has no terminal
  fi
  echo "installing python3-venv"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    # A python3 other than Debian's default needs its own pythonX.Y-venv.
    version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${version}-venv" >/dev/null
  fi
fi

venv=${PEERGRID_NOTEBOOK_VENV:-$root/.venv-notebooks}
# What the environment was built from: the requirements and the interpreter.
wanted=$( { cat notebooks/requirements.txt; python3 -c 'import sys; print(sys.executable, sys.version)'; } \
  | sha256sum | cut -d' ' -f1)
stamp="$venv/.built-from"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] \
  || ! "$venv/bin/python" -c 'import jupytext, nbconvert, nbclient, ipykernel, pandas, matplotlib' >/dev/null 2>&1; then
  if [ -e "$venv" ]; then
    # Remove only what is recognisably a virtual environment.
    [ -f "$venv/pyvenv.cfg" ] || die "$venv exists and is not a virtual environment"
    rm -rf "$venv"
  fi
  echo "creating $venv and installing notebooks/requirements.txt"
  python3 -m venv "$venv"
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
    "$venv/bin/python" -m pip install -q -r notebooks/requirements.txt
  echo "$wanted" >"$stamp"
fi
"$venv/bin/python" -c 'import sys, pandas, matplotlib, jupytext, nbconvert
print("python", sys.version.split()[0], "| pandas", pandas.__version__, "| matplotlib",
      matplotlib.__version__, "| jupytext", jupytext.__version__, "| nbconvert", nbconvert.__version__)'

# Jupyter and matplotlib read and write their settings in temporary folders, so
# that nothing of the user's (kernels, configuration, caches) takes part.
export PATH="$venv/bin:$PATH"
export PYTHONPATH="$root/notebooks${PYTHONPATH:+:$PYTHONPATH}"
export JUPYTER_CONFIG_DIR="$tmp/jupyter-config" JUPYTER_DATA_DIR="$tmp/jupyter-data"
export IPYTHONDIR="$tmp/ipython" MPLCONFIGDIR="$tmp/matplotlib" MPLBACKEND=Agg
export JUPYTER_PLATFORM_DIRS=1 PYDEVD_DISABLE_FILE_VALIDATION=1

# run NOTEBOOK FIGURES_DIR: converts notebooks/NOTEBOOK.py, executes it with the
# environment set by the caller, and checks that it wrote a PNG into FIGURES_DIR.
run() {
  local name=$1 figures=$2 work
  work=$(mktemp -d "$tmp/$name.XXXX")
  jupytext --quiet --set-kernel python3 "notebooks/$name.py" -o "$work/$name.ipynb"
  touch "$work/started"
  # The kernel's warning that its loopback TCP connection is unencrypted is expected.
  jupyter nbconvert --log-level=WARN --to notebook --execute "$work/$name.ipynb" \
    --ExecutePreprocessor.timeout=600 --output "$name.executed.ipynb" --output-dir "$work"
  # The notebook's printed output, for the log.
  python -c 'import json, sys
for cell in json.load(open(sys.argv[1]))["cells"]:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            sys.stdout.write("".join(out["text"]))' "$work/$name.executed.ipynb" | sed 's/^/    /'
  local pngs
  pngs=$(find "$figures" -maxdepth 1 -name '*.png' -newer "$work/started" 2>/dev/null | sort)
  [ -n "$pngs" ] || die "$name wrote no PNG into $figures"
  while IFS= read -r png; do
    head -c 8 "$png" | od -An -c | grep -q 'P   N   G' || die "$png is not a PNG"
  done <<<"$pngs"
  cp "$work/$name.executed.ipynb" "$figures/$name.ipynb"
  echo "$name: $(wc -l <<<"$pngs") PNG in $figures"
}

step "analysis.py on $results_a"
PEERGRID_RESULTS="$results_a" run analysis "$results_a/notebook"
if [ "$results_b" != "$results_a" ]; then
  step "analysis.py on $results_b"
  PEERGRID_RESULTS="$results_b" run analysis "$results_b/notebook"
fi

step "compare.py: A = $results_a, B = $results_b"
PEERGRID_A="$results_a" PEERGRID_B="$results_b" run compare "$results_a/compare"

echo
echo "notebooks passed in ${SECONDS}s"
