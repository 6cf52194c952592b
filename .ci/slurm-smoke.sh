#!/usr/bin/env bash
# Self-test of the single-node Slurm used by CI:
#   1. .ci/slurm-up.sh
#   2. a 4-task job array (sbatch --wait --array=0-3), one output file per task
#   3. a job depending on the array (--dependency=afterok:<array job id>),
#      submitted while the array still runs; it checks, when it runs, that all
#      four task outputs are already complete (afterok waits for every task)
#   4. .ci/slurm-down.sh (always, via trap)
# Exits nonzero on any failure. Must run as root (like slurm-up.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

log() { printf 'slurm-smoke: %s\n' "$*"; }
fail() { echo "slurm-smoke: FAIL: $*" >&2; exit 1; }

tmpdir=$(mktemp -d)
array_pid=
cleanup() {
  local rc=$?
  if [ -n "$array_pid" ]; then kill "$array_pid" 2>/dev/null || true; fi
  if [ "$rc" -ne 0 ]; then
    echo "----- files in the job directory -----" >&2
    for f in "$tmpdir"/*; do [ -e "$f" ] && { echo "== $f" >&2; cat "$f" >&2; }; done
    echo "----- squeue -----" >&2
    timeout 10 squeue -l >&2 2>&1 || true
  fi
  "$here/slurm-down.sh" || true
  rm -rf "$tmpdir"
  if [ "$rc" -eq 0 ]; then log "PASS"; else echo "slurm-smoke: FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT

t0=$SECONDS
"$here/slurm-up.sh"
t_up=$((SECONDS - t0))

# Jobs run as the submitting user (root) in the submission directory, which on a
# single node is trivially shared with the compute node.
cd "$tmpdir"

# 1. The array. --parsable prints the job id as soon as the job is queued;
#    --wait then blocks until every task has ended and exits nonzero if any task
#    failed. It runs in the background so the dependent job can be submitted
#    while the tasks still run (with 2 CPUs, tasks queue and run two at a time).
#    Each task sleeps first and prints last, so a complete output line means the
#    task has finished: a dependent job that started early would notice.
t1=$SECONDS
timeout 300 sbatch --parsable --wait --array=0-3 --job-name=smoke-array \
  --output="$tmpdir/out_%A_%a.txt" \
  --wrap 'sleep 2; echo task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT' \
  >"$tmpdir/array.id" 2>"$tmpdir/array.err" &
array_pid=$!

array_id=
for ((i = 0; i < 100; i++)); do
  array_id=$(tr -dc '0-9' 2>/dev/null <"$tmpdir/array.id" || true)
  [ -n "$array_id" ] && break
  kill -0 "$array_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$array_id" ] || fail "sbatch did not print the array job id ($(cat "$tmpdir/array.err" 2>/dev/null))"
log "array job $array_id submitted"

# 2. The dependent job. --kill-on-invalid-dep=yes: if a task fails, the job is
#    cancelled instead of pending forever (which would hang --wait). Note that
#    `sbatch --wait` exits 0 for a job cancelled before it started, so success is
#    judged by the job's output below, not only by sbatch's exit status.
t2=$SECONDS
dep_out=$(timeout 300 sbatch --parsable --wait --job-name=smoke-dep \
  --dependency="afterok:$array_id" --kill-on-invalid-dep=yes \
  --output="$tmpdir/dep_%j.txt" \
  --wrap "for i in 0 1 2 3; do grep -qx \"task \$i of 4\" out_${array_id}_\$i.txt || { echo missing task \$i; exit 1; }; done; echo dependent ok as \$(id -un) in \$PWD") ||
  fail "dependent job failed (sbatch exit $?)"
dep_id=$(printf '%s' "$dep_out" | tr -dc '0-9')
log "dependent job $dep_id finished ($((SECONDS - t2))s after its submission)"

# The array's sbatch --wait must have ended (successfully) by now.
if wait "$array_pid"; then array_rc=0; else array_rc=$?; fi
array_pid=
[ "$array_rc" -eq 0 ] || fail "sbatch --wait for the array exited $array_rc: $(cat "$tmpdir/array.err")"
log "array job $array_id finished ($((SECONDS - t1))s after its submission)"

# 3. Check the outputs.
for i in 0 1 2 3; do
  f="$tmpdir/out_${array_id}_$i.txt"
  [ -f "$f" ] || fail "missing $f"
  grep -qx "task $i of 4" "$f" || fail "unexpected content in $f: $(cat "$f")"
done
grep -q '^dependent ok as root in ' "$tmpdir/dep_${dep_id}.txt" ||
  fail "dependent job output: $(cat "$tmpdir/dep_${dep_id}.txt" 2>/dev/null)"
log "outputs OK: $(cat "$tmpdir/dep_${dep_id}.txt")"
log "timings: slurm-up ${t_up}s, array + dependent job $((SECONDS - t1))s"
