#!/usr/bin/env bash
# A two-node Slurm cluster with accounting on this machine, for the tests and for trying the
# Slurm launcher: `make slurm-up`. Debian 12, as root, without systemd: each daemon is started
# directly. Installs the Debian packages when missing, writes /etc/slurm/{slurm,slurmdbd,gres}.conf,
# starts munged, mariadbd, slurmdbd, slurmctld and one slurmd per node, and waits until the nodes
# are idle.
#
# The two nodes ($HOST and ${HOST}2) are two slurmd on this host (`slurmd -N NAME`, each with its
# own port (6818 and 6828: slurmdbd holds 6819), pid file, spool and log), so that a job can span nodes (`srun -N2`, nodes=2). Each
# claims all of the machine's CPUs and four fake GPUs: Slurm counts per node and does not know
# they share the hardware. The second name resolves to 127.0.0.1 through /etc/hosts, as a real
# cluster's node names resolve, so that the workers of a multi-node job find each other.
#
# Idempotent: a second run finds everything in place and returns at once. A daemon already
# running is left alone (and is not stopped by `make slurm-down`, which stops only what this
# script started: their pids are listed in $STATE_DIR/started).
#
# MAX_ARRAY_SIZE=N sets Slurm's MaxArraySize (default 1001, Slurm's own); a changed slurm.conf
# restarts slurmctld and slurmd, since `scontrol reconfigure` does not apply MaxArraySize.
set -euo pipefail

MAX_ARRAY_SIZE="${MAX_ARRAY_SIZE:-1001}"
STATE_DIR=/run/hpc-sweeper-slurm
STARTED="$STATE_DIR/started"
MARK="# Written by hpc-sweeper scripts/slurm-up.sh; make slurm-up rewrites it."
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
HOST="$(hostname)"
NODES=("$HOST" "${HOST}2")
HOSTS_LINE="127.0.0.1 ${HOST}2 # hpc-sweeper slurm-up: the second Slurm node"
DB_SOCKET=/run/mysqld/mysqld.sock

log() { echo "slurm-up: $*"; }
die() { echo "slurm-up: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and writes /etc/slurm)"

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# write_if_changed FILE MODE: stdin becomes FILE (mode MODE) unless it already holds exactly that.
# Prints "changed" when it wrote.
write_if_changed() {
    local file="$1" mode="$2" tmp
    tmp="$(mktemp "$file.XXXXXX")"
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [ -f "$file" ] && cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
    else
        mv -f "$tmp" "$file"
        echo changed
    fi
}

# running PID NAME: PID is a live process called NAME. A daemon that exited stays a zombie here
# when the machine's init does not reap it, so the state must not be Z.
running() {
    [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
        [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# alive PIDFILE NAME: the pid file names a live process called NAME.
alive() {
    running "$(cat "$1" 2>/dev/null)" "$2"
}

# start LABEL PIDFILE COMMAND...: run the (self-daemonizing) command, wait for its pid file, and
# list it as ours under LABEL (its process name, or NAME@NODE for one slurmd of several). One at a
# time: a daemon started before the previous one wrote its pid file can kill it.
start() {
    local label="$1" name="${1%@*}" pidfile="$2"
    shift 2
    rm -f "$pidfile"
    "$@"
    for _ in $(seq 300); do
        alive "$pidfile" "$name" && break
        sleep 0.1
    done
    alive "$pidfile" "$name" || die "$name did not start (see its log under /var/log)"
    mkdir -p "$STATE_DIR"
    { grep -v "^$label " "$STARTED" 2>/dev/null || true; echo "$label $(cat "$pidfile")"; } >"$STARTED.tmp"
    mv -f "$STARTED.tmp" "$STARTED"
    log "started $label (pid $(cat "$pidfile"))"
}

# stop NAME PIDFILE: stop the running daemon (to restart it with a new configuration).
stop() {
    local pid
    pid="$(cat "$2")"
    kill "$pid"
    for _ in $(seq 300); do
        running "$pid" "$1" || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}

start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge
    chown munge:munge /run/munge
    alive /run/munge/munged.pid munged && return
    start munged /run/munge/munged.pid su -s /bin/sh munge -c /usr/sbin/munged
    munge -n | unmunge >/dev/null || die "munge does not work: munge -n | unmunge"
}

# mariadbd does not detach by itself.
launch_mariadbd() {
    setsid mariadbd --user=mysql --datadir=/var/lib/mysql --socket="$DB_SOCKET" \
        --pid-file=/run/mysqld/mysqld.pid --skip-networking --log-error=/var/log/mysql/error.log \
        --innodb-buffer-pool-size=512M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
}

start_mariadb() {
    mkdir -p /run/mysqld /var/log/mysql
    chown mysql:mysql /run/mysqld /var/log/mysql
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    if ! mariadb-admin --socket="$DB_SOCKET" ping >/dev/null 2>&1; then
        touch /var/log/mysql/error.log
        chown mysql:mysql /var/log/mysql/error.log
        start mariadbd /run/mysqld/mysqld.pid launch_mariadbd
        for _ in $(seq 300); do
            mariadb-admin --socket="$DB_SOCKET" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
    fi
    mariadb-admin --socket="$DB_SOCKET" ping >/dev/null 2>&1 || die "mariadbd does not answer (see /var/log/mysql/error.log)"
}

# The slurmdbd database password: made once, then read back from slurmdbd.conf.
db_password() {
    local old
    old="$(sed -n 's/^StoragePass=//p' /etc/slurm/slurmdbd.conf 2>/dev/null)"
    [ -n "$old" ] && echo "$old" || head -c 18 /dev/urandom | base64 | tr -d '/+='
}

setup_database() {
    local password="$1"
    mariadb --socket="$DB_SOCKET" <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$password';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

write_slurmdbd_conf() {
    write_if_changed /etc/slurm/slurmdbd.conf 600 <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$1
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
EOF
}

write_slurm_conf() {
    local cpus memory
    cpus="$(nproc)"
    # 90% of the machine's memory: slurmd drains a node that has less than it claims.
    memory="$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
    write_if_changed /etc/slurm/slurm.conf 644 <<EOF
$MARK
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
# Memory is allocated as on a production cluster: a job's request is its limit (see OverMemoryKill);
# a job that asks for none gets 1 GB a CPU rather than a whole node.
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
# Each task's memory sampled every second (sacct's MaxRSS of a job of a few seconds, issue 30), and a
# task over its job's memory request killed at the sample that sees it (OUT_OF_MEMORY), as a
# cluster's cgroup would; this machine has no cgroup for Slurm to use.
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
MailProg=/bin/true
# Jobs start in 0.4 s instead of 2.5 s; the backfill scheduler looks every 5 s rather than 30
# (benchmarks/right_size.py: a right-sized job starts in a gap within seconds).
SchedulerParameters=batch_sched_delay=0,bf_interval=5
MaxArraySize=$MAX_ARRAY_SIZE
# A node that was down comes back by itself; a cancelled job is killed 5 s after SIGTERM.
ReturnToService=2
KillWait=5
StateSaveLocation=/var/lib/slurm/slurmctld
# %n: the node's name, one of each per slurmd.
SlurmdSpoolDir=/var/lib/slurm/slurmd-%n
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd-%n.pid
NodeName=${NODES[0]} NodeHostname=$HOST NodeAddr=127.0.0.1 Port=6818 CPUs=$cpus RealMemory=$memory Gres=gpu:4 State=UNKNOWN
NodeName=${NODES[1]} NodeHostname=$HOST NodeAddr=127.0.0.1 Port=6828 CPUs=$cpus RealMemory=$memory Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# Four "GPUs": Slurm needs existing character devices, and assigns them to jobs as it would GPUs
# (SLURM_GPUS_ON_NODE, CUDA_VISIBLE_DEVICES); there is no GPU behind them.
write_gres_conf() {
    write_if_changed /etc/slurm/gres.conf 644 <<EOF
$MARK
AutoDetect=off
Name=gpu File=/dev/null
Name=gpu File=/dev/zero
Name=gpu File=/dev/full
Name=gpu File=/dev/urandom
EOF
}

# wait_until WHAT SECONDS COMMAND...: retry COMMAND (each try at most 5 s) until it succeeds.
wait_until() {
    local what="$1" deadline=$((SECONDS + $2))
    shift 2
    until timeout 5 "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || die "$what (see the logs in /var/log/slurm)"
        sleep 0.2
    done
}

wait_for_node() {
    local node="$1" state="" deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ]; do
        state="$(timeout 5 sinfo -h -n "$node" -o %t 2>/dev/null || true)"
        case "$state" in
            idle | mix | alloc) return ;;
            down* | drain* | drng*) scontrol update nodename="$node" state=resume 2>/dev/null || true ;;
        esac
        sleep 0.1
    done
    die "node $node is '$state', not idle (see /var/log/slurm/slurmctld.log and slurmd-$node.log)"
}

# The second node's name resolves here, as a cluster's node names do.
add_host_names() {
    grep -qF "$HOSTS_LINE" /etc/hosts || echo "$HOSTS_LINE" >>/etc/hosts
}

# stop_slurmds: every slurmd running from a pid file of this script (before a new configuration;
# /run/slurm/slurmd.pid: the single node of an earlier version of this script).
stop_slurmds() {
    local pidfile
    for pidfile in /run/slurm/slurmd.pid /run/slurm/slurmd-*.pid; do
        [ -f "$pidfile" ] && alive "$pidfile" slurmd && stop slurmd "$pidfile"
    done
    [ -f "$STARTED" ] && sed -i '/^slurmd /d' "$STARTED"  # the single node's entry
    return 0
}

main() {
    install_packages
    mkdir -p /etc/slurm /run/slurm /var/lib/slurm/slurmctld /var/log/slurm
    add_host_names
    start_munge
    start_mariadb

    local password dbd_changed conf_changed
    password="$(db_password)"
    setup_database "$password"
    dbd_changed="$(write_slurmdbd_conf "$password")"
    conf_changed="$(write_slurm_conf)$(write_gres_conf)"

    if alive /run/slurm/slurmdbd.pid slurmdbd && [ -n "$dbd_changed" ]; then stop slurmdbd /run/slurm/slurmdbd.pid; fi
    alive /run/slurm/slurmdbd.pid slurmdbd || start slurmdbd /run/slurm/slurmdbd.pid /usr/sbin/slurmdbd
    # slurmctld exits at once when slurmdbd does not answer yet (its first start creates tables).
    wait_until "slurmdbd does not answer" 120 sacctmgr -n list cluster
    if [ -n "$conf_changed" ]; then
        stop_slurmds
        alive /run/slurm/slurmctld.pid slurmctld && stop slurmctld /run/slurm/slurmctld.pid
    fi
    alive /run/slurm/slurmctld.pid slurmctld || start slurmctld /run/slurm/slurmctld.pid /usr/sbin/slurmctld
    wait_until "slurmctld does not answer" 60 scontrol ping
    local node
    for node in "${NODES[@]}"; do
        mkdir -p "/var/lib/slurm/slurmd-$node"
        alive "/run/slurm/slurmd-$node.pid" slurmd ||
            start "slurmd@$node" "/run/slurm/slurmd-$node.pid" /usr/sbin/slurmd -N "$node"
    done
    for node in "${NODES[@]}"; do wait_for_node "$node"; done
    log "the cluster of ${NODES[*]} is up: $(sinfo -h -o "%P %D nodes %t %c CPUs %G")"
}

main
