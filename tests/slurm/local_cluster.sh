#!/usr/bin/env bash
# A real one-node SLURM cluster on localhost, for the SLURM profile's test and for trying
# `snakemake --profile profiles/slurm` by hand. Needs root and Debian's apt.
#
#   tests/slurm/local_cluster.sh start DIR   # install if missing, start
#   tests/slurm/local_cluster.sh stop DIR
#
# SLURM's state, logs and pid files live under DIR. The configuration goes where every
# client looks, /etc/slurm/slurm.conf (SLURM_CONF would not reach the jobs: the executor
# plugin drops SLURM_* variables inside a job); a slurm.conf this script did not write is
# never overwritten.
set -euo pipefail

action=${1:?usage: $0 start|stop DIR}
dir=$(realpath -m "${2:?usage: $0 start|stop DIR}")
conf=/etc/slurm/slurm.conf
marker="# written by lmao-pipeline's tests/slurm/local_cluster.sh"

wait_for_exit() {
    for _ in $(seq 100); do
        pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || return 0
        sleep 0.1
    done
}

stop() {
    for daemon in slurmd slurmctld; do
        if [[ -f "$dir/$daemon.pid" ]]; then
            kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true
            rm -f "$dir/$daemon.pid"
        fi
    done
    wait_for_exit
}

if [[ $action == stop ]]; then
    stop
    exit 0
fi
[[ $action == start ]] || { echo "unknown action $action (start|stop)" >&2; exit 2; }
# exit status 3: this machine cannot host the cluster (a test skips); anything else is a failure
[[ $(id -u) == 0 ]] || { echo "needs root (the daemons run as root)" >&2; exit 3; }
mkdir -p "$dir"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || { echo "slurm-wlm is not installed and apt-get is missing" >&2; exit 3; }
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge; } \
            >"$dir.apt.log" 2>&1; then
        echo "apt-get could not install slurm-wlm and munge (see $dir.apt.log)" >&2
        exit 3
    fi
fi

# munge authenticates every message; the package made the key, the daemon needs its folder.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
fi

if [[ -f $conf ]] && ! grep -qF "$marker" "$conf"; then
    echo "$conf exists and was not written by this script: not touching a real cluster" >&2
    exit 3
fi
mkdir -p "$dir/state" "$dir/spool" /etc/slurm
memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
cat > "$conf" <<CONF
$marker
ClusterName=lmao-local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default a job takes all the node's memory and jobs run one at a time
DefMemPerCPU=500
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# squeue must still see finished jobs when the executor asks (no sacct without slurmdbd)
MinJobAge=600
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

stop
# daemons left by an earlier start (a test run that was killed) hold the ports: the config is
# ours (checked above), so they are ours too
pkill -x slurmd || true
pkill -x slurmctld || true
wait_for_exit
slurmctld
slurmd -N localhost
for _ in $(seq 100); do
    [[ $(sinfo -h -o %t 2>/dev/null) == idle ]] && exit 0
    sleep 0.2
done
echo "the node never became idle; see $dir/slurmctld.log and $dir/slurmd.log" >&2
sinfo >&2 || true
exit 1
