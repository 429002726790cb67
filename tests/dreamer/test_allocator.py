"""The allocator settings every worker runs with (harness.worker.ALLOCATOR_TUNABLES): a Dreamer update on
the CPU reuses the memory of the update before it instead of faulting in fresh pages.

Measured in subprocesses, as GLIBC_TUNABLES is read only at process start: minor page faults of the
third to tenth update of our DreamerV3 at DMC cartpole 1m, batch 16 x 64 (about 0.36 GB of XLA
temporaries per update), with the workers' environment and without it.
"""

import json
import os
import subprocess
import sys

from harness.worker import ALLOCATOR_TUNABLES, worker_environment

FAULTS = """
import json, resource, sys
from harness.bench_peers.ours import Ours
side = Ours({"task": "dmc_cartpole", "size": "1m", "batch": 16, "length": 64, "dtype": "float32"})
side.update(); side.update()
faults = []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    side.update()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""


def faults_per_update(env: dict[str, str]) -> list[int]:
    done = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_updates_reuse_their_memory_in_a_worker():
    plain = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    fresh, reused = faults_per_update(plain), faults_per_update(worker_environment(plain))
    assert min(fresh) > 40_000, fresh  # 4 KiB pages: about 0.35 GB faulted in by every update
    # the heap grows once or twice (where a new block does not fit the holes the last one left), at no fixed
    # update, and otherwise stays: measured [0, 0, 78896, 0, 0, ...], [65, 0, 91917, 0, ...] and
    # [23, 0, 0, 1, 0, 79172, 128, 0]
    assert sum(reused) < 2.5 * min(fresh), reused
    assert sum(faults < 1_000 for faults in reused) >= len(reused) - 2, reused


def test_worker_environment_keeps_a_users_other_tunables():
    env = worker_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=8:glibc.pthread.rseq=0", "HOME": "/h"})
    assert env["HOME"] == "/h"
    assert env["GLIBC_TUNABLES"].split(":") == ["glibc.pthread.rseq=0", *ALLOCATOR_TUNABLES]
    assert worker_environment({})["GLIBC_TUNABLES"] == ":".join(ALLOCATOR_TUNABLES)
