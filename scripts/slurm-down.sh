#!/usr/bin/env bash
# Stops the daemons that scripts/slurm-up.sh started (`make slurm-down`), newest first, and only
# those: each is listed with its pid, and a pid now held by another program is left alone.
# Configuration, accounting database and job state stay, so `make slurm-up` starts again quickly.
set -euo pipefail

STARTED=/run/hpc-sweeper-slurm/started

# PID is a live process called NAME (not a zombie left for an init that does not reap).
running() {
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

[ -f "$STARTED" ] || { echo "slurm-down: nothing to stop (no daemon started by slurm-up)"; exit 0; }

# Each line: LABEL PID, LABEL the process name or NAME@NODE (one slurmd per node).
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  sed -n "s/^\($name\(@[^ ]*\)\?\) \([0-9]*\)$/\1 \3/p" "$STARTED" | while read -r label pid; do
    if ! running "$pid" "$name"; then
        echo "slurm-down: $label (pid $pid) is not running"
        continue
    fi
    kill "$pid"
    for _ in $(seq 300); do
        running "$pid" "$name" || break
        sleep 0.1
    done
    if running "$pid" "$name"; then
        kill -9 "$pid"
        echo "slurm-down: killed $label (pid $pid): it did not stop within 30 s"
    else
        echo "slurm-down: stopped $label (pid $pid)"
    fi
  done
done
rm -f "$STARTED"
