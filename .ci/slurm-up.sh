#!/usr/bin/env bash
# Bring up a single-node Slurm cluster on the local machine (Debian bookworm, Slurm
# 22.05), for CI jobs that submit job arrays with sbatch. Must run as root.
#
# Idempotent: packages are installed only when missing, a running munged is
# reused, and a running Slurm whose configuration is unchanged and whose node
# answers is reused as is. Anything else (daemons half up, configuration
# changed, SLURM_CI_RESTART=1) is stopped and started afresh with a clean
# controller state (no jobs left over from a previous run).
#
# Systemd is not needed: all daemons are started directly.
#
# Layout (the Debian defaults, so no SLURM_CONF is needed by the caller):
#   /etc/slurm/slurm.conf              configuration written by this script
#   /var/log/slurm/slurmctld.log       controller log
#   /var/log/slurm/slurmd.log          node daemon log
#   /var/lib/slurm/slurmctld           controller state
#   /var/lib/slurm/slurmd              node daemon spool
#   /run/slurmctld.pid, /run/slurmd.pid, /run/munge/munged.pid
#
# Optional environment:
#   SLURM_CI_TIMEOUT      seconds to wait for the node to become idle (default 60)
#   SLURM_CI_CPUS         CPUs of the node (default: nproc)
#   SLURM_CI_REAL_MEMORY  RealMemory in MB (default: 90% of MemTotal)
#   SLURM_CI_RESTART      1 = always restart the Slurm daemons (default 0)
#   SLURM_CI_MIN_JOB_AGE  MinJobAge in seconds (default 300, Slurm's default).
#                         `sbatch --wait` polls after 2, 10, 42 s and then every
#                         32 s; a MinJobAge of 16 makes it poll every 8 s, of 4
#                         every 2 s. But finished jobs are then forgotten sooner
#                         (MinJobAge plus up to 60 s), and a later
#                         --dependency=afterok on a forgotten job counts as met,
#                         even if that job failed.
#
# On failure the tails of the Slurm and munge logs are printed and the exit
# status is nonzero. Stop everything with .ci/slurm-down.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
export PATH="$PATH:/usr/sbin:/sbin"

SLURM_CONF_FILE=/etc/slurm/slurm.conf
SLURM_LOG_DIR=/var/log/slurm
SLURM_STATE_DIR=/var/lib/slurm
SLURMCTLD_PID_FILE=/run/slurmctld.pid
SLURMD_PID_FILE=/run/slurmd.pid
MUNGED_PID_FILE=/run/munge/munged.pid

timeout_s=${SLURM_CI_TIMEOUT:-60}
restart=${SLURM_CI_RESTART:-0}
min_job_age=${SLURM_CI_MIN_JOB_AGE:-300}

log() { printf 'slurm-up: %s\n' "$*"; }

t0=$SECONDS
phase() { log "$* (t=$((SECONDS - t0))s)"; }

# Print the tail of every log that can explain a failure.
dump_logs() {
  local f
  for f in "$SLURM_LOG_DIR/slurmctld.log" "$SLURM_LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
    echo "----- $f (last 60 lines) -----" >&2
    if [ -r "$f" ]; then tail -n 60 "$f" >&2; else echo "(missing)" >&2; fi
  done
  if command -v sinfo >/dev/null 2>&1; then
    echo "----- sinfo -----" >&2
    timeout 10 sinfo -N -l >&2 2>&1 || true
  fi
}

die() {
  echo "slurm-up: ERROR: $*" >&2
  dump_logs
  exit 1
}

# shellcheck source=.ci/slurm-lib.sh
. "$(dirname "$0")/slurm-lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "slurm-up: must run as root" >&2; exit 1; }

# ---------------------------------------------------------------- 1. packages
install_packages() {
  local missing=0 cmd
  for cmd in slurmctld slurmd sbatch sinfo scontrol munged munge unmunge; do
    command -v "$cmd" >/dev/null 2>&1 || missing=1
  done
  if [ "$missing" -eq 0 ]; then
    phase "packages already installed"
    return 0
  fi
  phase "installing slurmctld slurmd slurm-client munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
  phase "packages installed"
}

# ------------------------------------------------------------------- 2. munge
munge_ok() { munge -n 2>/dev/null | unmunge 2>/dev/null | grep -q 'STATUS: *Success'; }

start_munge() {
  if [ -n "$(live_pid "$MUNGED_PID_FILE")" ] && munge_ok; then
    phase "munged already running"
    return 0
  fi
  # The package's postinst normally creates the key; make one if it did not.
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  # A stale pid file or socket from a killed munged would make it refuse to start.
  if [ -z "$(live_pid "$MUNGED_PID_FILE")" ]; then
    rm -f "$MUNGED_PID_FILE" /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  fi
  phase "starting munged"
  runuser -u munge -- /usr/sbin/munged --force || die "munged did not start"
  local i
  for ((i = 0; i < 50; i++)); do
    munge_ok && { phase "munge OK (munge -n | unmunge: Success)"; return 0; }
    sleep 0.2
  done
  die "munge -n | unmunge does not report Success"
}

# ---------------------------------------------------------- 3. configuration
node_name=$(hostname -s)
cpus=${SLURM_CI_CPUS:-$(nproc)}
if [ -n "${SLURM_CI_REAL_MEMORY:-}" ]; then
  real_memory=$SLURM_CI_REAL_MEMORY
else
  # slurmd drains a node that has less memory than RealMemory: stay well below.
  mem_total_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  real_memory=$((mem_total_mb * 9 / 10))
  [ "$real_memory" -ge 1 ] || real_memory=1
fi

render_conf() {
  cat <<EOF
# Single-node Slurm for CI, written by .ci/slurm-up.sh (overwritten on each run).
ClusterName=ci
SlurmctldHost=${node_name}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
# No mail on this machine; an unset MailProg only logs an error.
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# A node that was down (e.g. slurmd restarted) comes back by itself.
ReturnToService=2
# Seconds a finished job stays known to the controller (see SLURM_CI_MIN_JOB_AGE).
MinJobAge=${min_job_age}
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${SLURM_STATE_DIR}/slurmctld
SlurmdSpoolDir=${SLURM_STATE_DIR}/slurmd
SlurmctldPidFile=${SLURMCTLD_PID_FILE}
SlurmdPidFile=${SLURMD_PID_FILE}
SlurmctldLogFile=${SLURM_LOG_DIR}/slurmctld.log
SlurmdLogFile=${SLURM_LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${node_name} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_memory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# ------------------------------------------------------------- 4. Slurm state
# The node's state as sinfo prints it (idle, mixed, down*, ...), or empty.
node_state() { timeout 10 sinfo -h -n "$node_name" -o %T 2>/dev/null | head -n 1 || true; }

# Ready = responding and schedulable (no '*' suffix, not down/drained).
node_ready() {
  case "$(node_state)" in
    idle | mixed | allocated | completing) return 0 ;;
    *) return 1 ;;
  esac
}

can_reuse() {
  [ "$restart" != 1 ] || return 1
  [ -n "$(live_pid "$SLURMCTLD_PID_FILE")" ] || return 1
  [ -n "$(live_pid "$SLURMD_PID_FILE")" ] || return 1
  [ -r "$SLURM_CONF_FILE" ] || return 1
  [ "$(render_conf)" = "$(cat "$SLURM_CONF_FILE")" ] || return 1
  timeout 10 scontrol ping 2>/dev/null | grep -q 'UP' || return 1
  # Asks the local slurmd directly (the controller notices a dead slurmd late).
  timeout 10 scontrol show slurmd >/dev/null 2>&1 || return 1
  node_ready
}

start_slurm() {
  # Stop whatever is left of a previous instance (munged keeps running).
  "$here/slurm-down.sh" --keep-munge

  install -d -m 0755 /etc/slurm
  render_conf >"$SLURM_CONF_FILE.tmp"
  chmod 0644 "$SLURM_CONF_FILE.tmp"
  mv -f "$SLURM_CONF_FILE.tmp" "$SLURM_CONF_FILE"
  log "wrote $SLURM_CONF_FILE (node $node_name, CPUs=$cpus, RealMemory=$real_memory MB)"

  install -d -o slurm -g slurm -m 0755 "$SLURM_STATE_DIR" "$SLURM_LOG_DIR"
  install -d -o slurm -g slurm -m 0700 "$SLURM_STATE_DIR/slurmctld"
  install -d -o root -g root -m 0755 "$SLURM_STATE_DIR/slurmd"
  # Fresh logs per start, so a failure dump shows only this attempt.
  : >"$SLURM_LOG_DIR/slurmctld.log"
  : >"$SLURM_LOG_DIR/slurmd.log"
  chown slurm:slurm "$SLURM_LOG_DIR/slurmctld.log"

  # -c: start from a clean state (no jobs or node states from a previous run).
  phase "starting slurmctld"
  /usr/sbin/slurmctld -c || die "slurmctld did not start"
  local i
  for ((i = 0; i < 50; i++)); do
    timeout 5 scontrol ping 2>/dev/null | grep -q 'UP' && break
    sleep 0.2
  done
  [ -n "$(live_pid "$SLURMCTLD_PID_FILE")" ] || die "slurmctld exited right after starting"

  # -N: the node name is given explicitly, so an FQDN hostname does not matter.
  phase "starting slurmd"
  /usr/sbin/slurmd -N "$node_name" || die "slurmd did not start"
}

wait_idle() {
  local deadline=$((SECONDS + timeout_s)) state
  while ((SECONDS < deadline)); do
    if [ -z "$(live_pid "$SLURMCTLD_PID_FILE")" ]; then die "slurmctld is not running"; fi
    if [ -z "$(live_pid "$SLURMD_PID_FILE")" ]; then die "slurmd is not running"; fi
    state=$(node_state)
    case "$state" in
      idle | mixed | allocated | completing)
        phase "node $node_name is $state"
        return 0
        ;;
      # Rejected at registration (e.g. more CPUs or memory configured than
      # the machine has): waiting longer will not help.
      *inval* | *drain* | *fail*) die "node $node_name is '$state'" ;;
    esac
    sleep 0.5
  done
  state=$(node_state)
  die "node $node_name not idle after ${timeout_s}s (state: '${state:-unknown}')"
}

install_packages
start_munge
if can_reuse; then
  phase "reusing running Slurm (configuration unchanged, node $(node_state))"
else
  start_slurm
fi
wait_idle
phase "Slurm is up"
