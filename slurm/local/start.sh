#!/usr/bin/env bash
# Start a one-node SLURM cluster on localhost: munge, MariaDB + slurmdbd (job accounting, so `sacct`
# reports real job states), slurmctld and slurmd, all as root and without systemd.
#
#   apt-get install -y --no-install-recommends munge slurmctld slurmd slurm-client slurmdbd mariadb-server
#   SLURM_DIR=/tmp/slurm-local bash slurm/local/start.sh [--no-accounting]
#   export SLURM_CONF=/tmp/slurm-local/slurm.conf      # for sbatch, sacct, submitit, the tests
#   bash slurm/local/stop.sh                            # stops the daemons by their PID files
#
# Everything lives in $SLURM_DIR (config, state, logs, database, PID files); rerunning on an existing
# directory restarts the cluster with its job history. The configuration is the one recorded as
# working in the project's docs (local_slurm.md): no cgroup plugins, fast scheduling, short KillWait.
set -euo pipefail
D=${SLURM_DIR:-/tmp/slurm-local}
DB_PORT=${SLURM_DB_PORT:-3306}
alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
fail() { echo "start.sh: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "needs root (the daemons run as root)"
for b in munged slurmctld slurmd sinfo; do
  command -v "$b" >/dev/null || [[ -x /usr/sbin/$b ]] || fail "$b not found; install: apt-get install -y --no-install-recommends munge slurmctld slurmd slurm-client slurmdbd mariadb-server"
done
if alive "$D/run/slurmctld.pid" || alive "$D/run/mariadb.pid"; then
  fail "already running in $D (run slurm/local/stop.sh first)"
fi
ACCT=1; [[ "${1:-}" == "--no-accounting" ]] && ACCT=0
HOST=$(hostname -s)
NCPU=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 - 2048 ))
mkdir -p "$D"/{state,spool,log,run}
export SLURM_CONF="$D/slurm.conf"

# 1. munge: the Debian package creates the key; start munged only if none answers, and remember
#    that we did, so that stop.sh leaves a munged it did not start alone.
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
[[ -s /etc/munge/munge.key ]] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  touch "$D/run/munged.started"
fi
for _ in $(seq 50); do munge -n | unmunge >/dev/null 2>&1 && break; sleep 0.1; done

ACCT_LINES="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
if [[ $ACCT == 1 ]]; then
  # 2. MariaDB in a private data directory on 127.0.0.1
  if [[ ! -d "$D/mysql/mysql" ]]; then
    mariadb-install-db --user=root --datadir="$D/mysql" --auth-root-authentication-method=normal \
      --skip-test-db >"$D/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed, see $D/log/mariadb-install.log"
  fi
  /usr/sbin/mariadbd --no-defaults --user=root --datadir="$D/mysql" --socket="$D/run/mysql.sock" \
    --pid-file="$D/run/mariadb.pid" --port="$DB_PORT" --bind-address=127.0.0.1 --log-error="$D/log/mariadb.err" \
    --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
  for _ in $(seq 150); do mariadb --socket="$D/run/mysql.sock" -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
  mariadb --socket="$D/run/mysql.sock" -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;" || fail "MariaDB did not start, see $D/log/mariadb.err"
  # 3. slurmdbd reads slurmdbd.conf from the directory of $SLURM_CONF (mode 600, owned by SlurmUser)
  cat >"$D/slurmdbd.conf" <<EOC
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
LogFile=$D/log/slurmdbd.log
PidFile=$D/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOC
  chmod 600 "$D/slurmdbd.conf"
  ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
fi

# 4. slurm.conf: one node with all CPUs, one partition `debug`.
#    KillWait=5: a cancelled job frees the node in 5 s, not 30. bf_interval/sched_interval=1: jobs
#    start within ~1 s of submission instead of 2-3 s. cred_expire=5: a requeued job may start again
#    after 6 s instead of 121 s (SLURM holds requeued jobs for cred_expire + 1 seconds).
#    Partition `urgent` preempts jobs of `debug` (SIGTERM, requeue; SIGKILL after GraceTime) like a
#    cluster's preemptible partitions do.
cat >"$SLURM_CONF" <<EOC
ClusterName=localcluster
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=5
CryptoType=crypto/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
$ACCT_LINES
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
MinJobAge=300
KillWait=5
CompleteWait=0
SchedulerParameters=bf_interval=1,sched_interval=1
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$NCPU Sockets=1 CoresPerSocket=$NCPU ThreadsPerCore=1 RealMemory=$MEM_MB State=UNKNOWN
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=20
PartitionName=urgent Nodes=$HOST MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOC

if [[ $ACCT == 1 ]]; then
  /usr/sbin/slurmdbd
  for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.1; done
  clusters=$(sacctmgr -n -P list cluster format=cluster) || fail "slurmdbd did not start, see $D/log/slurmdbd.log"
  # (no `| grep -q`: with pipefail an early grep exit makes sacctmgr die of SIGPIPE)
  grep -qx localcluster <<<"$clusters" || sacctmgr -i add cluster localcluster >/dev/null
fi
/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 100); do
  [[ "$(sinfo -h -o %t 2>/dev/null)" == idle ]] && { sinfo; echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.2
done
fail "node not idle after 20 s: $(sinfo -h -o '%t %E' 2>&1); see $D/log/slurmctld.log and $D/log/slurmd.log"
