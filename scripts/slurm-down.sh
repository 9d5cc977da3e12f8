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

for name in slurmd slurmctld slurmdbd mariadbd munged; do
    pid="$(sed -n "s/^$name //p" "$STARTED")"
    [ -n "$pid" ] || continue
    if ! running "$pid" "$name"; then
        echo "slurm-down: $name (pid $pid) is not running"
        continue
    fi
    kill "$pid"
    for _ in $(seq 300); do
        running "$pid" "$name" || break
        sleep 0.1
    done
    if running "$pid" "$name"; then
        kill -9 "$pid"
        echo "slurm-down: killed $name (pid $pid): it did not stop within 30 s"
    else
        echo "slurm-down: stopped $name (pid $pid)"
    fi
done
rm -f "$STARTED"
