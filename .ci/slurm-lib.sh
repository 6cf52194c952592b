#!/usr/bin/env bash
# Process helpers shared by slurm-up.sh and slurm-down.sh (sourced, not run).

# True if process $1 exists and is not a zombie. A killed daemon can linger as
# a zombie until PID 1 reaps it (slowly, in some containers); kill -0 alone
# would still report it alive.
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Print the pid recorded in a pid file if that process is alive, else nothing.
live_pid() {
  local file=$1 pid
  [ -r "$file" ] || return 0
  pid=$(tr -dc '0-9' 2>/dev/null <"$file" || true)
  if [ -n "$pid" ] && pid_alive "$pid"; then
    echo "$pid"
  fi
}
