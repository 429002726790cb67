"""`agent=dreamerv3_official` checkpoints cost what is new: each writes the replay chunks the official
replay has not written yet and hard-links the others from the previous checkpoint.

The server of the agent (tiny settings: size 1m, batch 2 x 8, chunks of 16 steps, one env) fills its
replay with FILL steps, saves checkpoint A, takes MORE steps and saves B, both through
`RunDir.save_checkpoint` as the loop does (replay_side.py, in .venv-official). The replay capacity is
the items at A, so that the MORE steps evict its oldest chunks. FILL is 64 and 256: the replay 4x
larger, the same MORE steps.
"""

import json
import os
import subprocess
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from omegaconf import OmegaConf

from agents.official.agent import official_settings
from agents.official.setup import REPO_ROOT
from harness.plan import compose

pytestmark = pytest.mark.official

SIDE = Path(__file__).with_name("replay_side.py")
CHUNK, MORE, CONTEXT = 16, 40, 8  # a replay item is batch_length + 1 steps: a stream's first 8 make none
FILLS = (64, 256)


def scenario(python: Path, work: Path, fill: int) -> dict:
    config = OmegaConf.to_container(compose(["agent=dreamerv3_official"]).agent, resolve=True)
    config.update(size="1m", batch_size=2, batch_length=8, train_ratio=4,
                  replay={"capacity": fill - CONTEXT, "online": True}, flags={"replay.chunksize": CHUNK})
    obs = gym.spaces.Dict({"position": gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)})
    settings = official_settings(config, obs, gym.spaces.Box(-1, 1, (1,), np.float32), 1, 0)
    work.mkdir()
    (work / "settings.json").write_text(json.dumps(settings))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([str(python), str(SIDE), str(work / "settings.json"), str(work), str(fill), str(MORE),
                           str(work / "out.json")], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    out = json.loads((work / "out.json").read_text())
    return {**out, **{k: Path(out[k]) for k in "abc"}}


@pytest.fixture(scope="module")
def runs(official_python, tmp_path_factory):
    return {fill: scenario(official_python, tmp_path_factory.mktemp("cost") / str(fill), fill) for fill in FILLS}


def files(checkpoint: Path) -> dict[str, os.stat_result]:
    return {str(f.relative_to(checkpoint)): f.stat() for f in sorted(checkpoint.rglob("*")) if f.is_file()}


def new_in(later: Path, earlier: Path) -> dict[str, int]:
    """The files of `later` that are no file of `earlier` (another inode), with their sizes."""
    inodes = {(s.st_dev, s.st_ino) for s in files(earlier).values()}
    return {name: s.st_size for name, s in files(later).items() if (s.st_dev, s.st_ino) not in inodes}


def chunks(checkpoint: Path) -> dict[str, os.stat_result]:
    return {name.removeprefix("agent/replay/"): s for name, s in files(checkpoint).items()
            if name.startswith("agent/replay/")}


def steps_in(names) -> int:
    return sum(int(Path(name).stem.split("-")[-1]) for name in names)  # time-uuid-succ-length.npz


@pytest.mark.parametrize("fill", FILLS)
def test_a_checkpoint_writes_only_the_new_chunks_and_links_the_others(runs, fill):
    run = runs[fill]
    a, b = chunks(run["a"]), chunks(run["b"])
    assert steps_in(a) == fill and len(a) == fill // CHUNK  # A: every step, in full chunks
    assert sorted(b) == run["held"]  # B: the written chunks the replay holds, no other
    assert set(a) - set(b), "no chunk of A was evicted: the test does not see eviction"
    for name in set(a) & set(b):
        assert (b[name].st_dev, b[name].st_ino) == (a[name].st_dev, a[name].st_ino), f"{name} is not a hard link"
    new = new_in(run["b"], run["a"])
    new_chunks = [name.removeprefix("agent/replay/") for name in new if name.startswith("agent/replay/")]
    assert sorted(new_chunks) == sorted(set(b) - set(a)) and steps_in(new_chunks) == MORE
    assert set(new) - {f"agent/replay/{name}" for name in new_chunks} == {
        "agent/agent.pkl", "agent/server.pkl", "loop.json", "manifest.json"}


def test_the_bytes_a_checkpoint_writes_do_not_grow_with_the_replay(runs):
    small, large = (runs[fill] for fill in FILLS)
    replay_small, replay_large = (sum(s.st_size for s in chunks(run["a"]).values()) for run in (small, large))
    assert replay_large > 3 * replay_small
    written_small, written_large = (sum(new_in(run["b"], run["a"]).values()) for run in (small, large))
    print(f"replay at A: {replay_small} and {replay_large} bytes; B wrote {written_small} and {written_large}")
    assert abs(written_large - written_small) < replay_small / 4


@pytest.mark.parametrize("fill", FILLS)
def test_a_fresh_agent_loads_the_replay_the_saver_held(runs, fill):
    run = runs[fill]
    saver_items, loaded_items = run["items"]
    assert loaded_items == saver_items == fill - CONTEXT
    assert sorted(run["loaded"]) == run["held"]
    written_in_a = set(chunks(run["a"]))
    for name, differ in run["loaded"].items():
        # as the official code: latents the train step rewrote after a chunk was written are not saved again
        assert not differ or (name in written_in_a and name in run["rewritten_chunks"]
                              and set(differ) <= set(run["rewritten"])), (name, differ)
    # and the loaded server's next checkpoint links every chunk from the one it loaded
    b, c = chunks(run["b"]), chunks(run["c"])
    assert sorted(c) == sorted(b)
    assert all((c[name].st_dev, c[name].st_ino) == (b[name].st_dev, b[name].st_ino) for name in c)
