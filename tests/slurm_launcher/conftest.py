"""The real one-node SLURM cluster the SLURM tests submit to (slurm/local/start.sh).

The session starts it unless one already runs in $SLURM_DIR (default /tmp/slurm-local), and stops it
at the end only if it started it. In CI (CI=true) a cluster that cannot start fails the tests;
elsewhere, without root or without the SLURM packages, they are skipped with the reason.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SLURM_DIR = Path(os.environ.get("SLURM_DIR", "/tmp/slurm-local"))
APT = "apt-get install -y --no-install-recommends munge slurmctld slurmd slurm-client slurmdbd mariadb-server"


def cluster_up(conf: Path) -> bool:
    if not conf.exists() or shutil.which("sinfo") is None:
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "SLURM_CONF": str(conf)})
    return result.returncode == 0 and result.stdout.strip() in ("idle", "mix", "alloc")


def script(name: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "slurm/local" / name)], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "SLURM_DIR": str(SLURM_DIR)})


@pytest.fixture(scope="session")
def slurm_cluster():
    """SLURM_CONF of a running local cluster, set in os.environ for the session's commands."""
    conf = SLURM_DIR / "slurm.conf"
    started = False
    if not cluster_up(conf):
        missing = [b for b in ("slurmctld", "slurmd", "slurmdbd", "munged", "mariadbd", "sbatch")
                   if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
        reason = (f"SLURM packages missing ({', '.join(missing)}): {APT}" if missing
                  else "starting the local SLURM cluster needs root" if os.geteuid() != 0 else None)
        if reason:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI: cannot start the local SLURM cluster: {reason}")
            pytest.skip(reason)
        result = script("start.sh")
        if result.returncode != 0:
            pytest.fail(f"slurm/local/start.sh failed:\n{result.stdout}\n{result.stderr}")
        started = True
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    yield conf
    if previous is None:
        os.environ.pop("SLURM_CONF")
    else:
        os.environ["SLURM_CONF"] = previous
    if started:
        result = script("stop.sh")
        assert result.returncode == 0, result.stderr

