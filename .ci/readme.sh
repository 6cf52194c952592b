#!/usr/bin/env bash
# Runs the "Try it" block of the README as written, after the main command made
# results/quickstart: what a new user types, in the order they would type it.
set -euo pipefail
cd "$(dirname "$0")/.."
block=$(awk '/^## Try it/{f=1} f && /^```sh/{b=1; next} b && /^```/{exit} b' README.md)
[ -n "$block" ] || { echo "README.md has no \"## Try it\" sh block" >&2; exit 1; }
# A local re-run starts from the same state as a fresh clone.
rm -rf results/ttl-small results/quickstart-0 results/quickstart-1 results/quickstart-merged
printf '%s\n' "$block"
bash -euo pipefail -c "$block"
