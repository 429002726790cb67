#!/usr/bin/env bash
# Stop the cluster started by slurm/local/start.sh, by the PID files in $SLURM_DIR (never by process
# name). Jobs still in the queue are cancelled first so that no job process outlives its daemons.
set -uo pipefail
D=${SLURM_DIR:-/tmp/slurm-local}
export SLURM_CONF="$D/slurm.conf"
alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

if alive "$D/run/slurmctld.pid" && [[ -n "$(squeue -h -o %i 2>/dev/null)" ]]; then
  scancel --full --user="$(id -un)" 2>/dev/null
  for _ in $(seq 100); do [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break; sleep 0.1; done
fi
for daemon in slurmd slurmctld slurmdbd mariadb; do
  pidfile="$D/run/$daemon.pid"
  [[ -s $pidfile ]] || continue
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
done
# munged only if start.sh started it (another user of munge on this machine keeps its daemon)
if [[ -e "$D/run/munged.started" ]]; then
  [[ -s /run/munge/munged.pid ]] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null
  rm -f "$D/run/munged.started"
fi
exit 0
