#!/usr/bin/env bash
# Tear down the single-node Slurm cluster started by .ci/slurm-up.sh.
#
#   .ci/slurm-down.sh               stop slurmctld, slurmd and munged
#   .ci/slurm-down.sh --keep-munge  stop only the Slurm daemons
#
# Order: ask the controller to shut everything down (`scontrol shutdown`), then
# signal whatever is still alive by its pid file (TERM, then KILL after a grace
# period), then stop munged by its pid file. Daemons are found only through
# their pid files, never by process name.
#
# This script never fails its caller: every step tolerates errors and it always
# exits 0, so it is safe in a `trap ... EXIT` and on a machine where nothing runs.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

SLURMCTLD_PID_FILE=/run/slurmctld.pid
SLURMD_PID_FILE=/run/slurmd.pid
MUNGED_PID_FILE=/run/munge/munged.pid

keep_munge=0
for arg in "$@"; do
  case "$arg" in
    --keep-munge) keep_munge=1 ;;
    *) echo "slurm-down: unknown argument '$arg' (ignored)" >&2 ;;
  esac
done

# shellcheck source=.ci/slurm-lib.sh
. "$(dirname "$0")/slurm-lib.sh"

# Wait up to $2 seconds (in 0.2 s steps) for process $1 to exit. The process
# itself is watched, not its pid file: munged removes its pid file before it
# has finished exiting.
wait_pid_gone() {
  local pid=$1 seconds=$2 i
  for ((i = 0; i < seconds * 5; i++)); do
    pid_alive "$pid" || return 0
    sleep 0.2
  done
  return 1
}

# Stop the daemon recorded in pid file $1 (named $2): TERM, wait, then KILL.
stop_by_pid_file() {
  local file=$1 name=$2 pid
  pid=$(live_pid "$file")
  if [ -z "$pid" ]; then
    rm -f "$file" 2>/dev/null || true
    return 0
  fi
  echo "slurm-down: stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_pid_gone "$pid" 15; then
    echo "slurm-down: $name (pid $pid) ignored SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 5 || echo "slurm-down: $name (pid $pid) is still alive" >&2
  fi
  rm -f "$file" 2>/dev/null || true
}

main() {
  # 1. Graceful: the controller tells every slurmd to exit, then exits itself.
  local ctld_pid slurmd_pid
  ctld_pid=$(live_pid "$SLURMCTLD_PID_FILE")
  slurmd_pid=$(live_pid "$SLURMD_PID_FILE")
  if [ -n "$ctld_pid" ] && command -v scontrol >/dev/null 2>&1; then
    echo "slurm-down: scontrol shutdown"
    timeout 20 scontrol shutdown >/dev/null 2>&1 || echo "slurm-down: scontrol shutdown failed (continuing)"
    wait_pid_gone "$ctld_pid" 15 || true
    if [ -n "$slurmd_pid" ]; then wait_pid_gone "$slurmd_pid" 10 || true; fi
  fi

  # 2. Whatever is still running (controller unreachable, slurmd orphaned, ...).
  stop_by_pid_file "$SLURMD_PID_FILE" slurmd
  stop_by_pid_file "$SLURMCTLD_PID_FILE" slurmctld

  # 3. munged last: the Slurm daemons need it to exchange messages while stopping.
  if [ "$keep_munge" -eq 0 ]; then
    stop_by_pid_file "$MUNGED_PID_FILE" munged
  fi
  echo "slurm-down: done"
}

main || true
exit 0
