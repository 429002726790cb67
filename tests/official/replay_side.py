"""The official side of test_checkpoint_cost.py; runs in .venv-official with the repository on PYTHONPATH.

    python replay_side.py SETTINGS.json WORK FILL MORE OUT.json

Drives the server of `agent=dreamerv3_official` (agents/official/server.py: the official agent and
replay) as `agent.py` does, with random observations of one env: FILL steps, checkpoint A, MORE steps,
checkpoint B, both through `RunDir.save_checkpoint` with the loop's `save_agent` (harness/loop.py) in
the run WORK/run. Then a fresh server loads B and saves checkpoint C with no new step (in WORK/run-c:
the run keeps two checkpoints, and A is to stay).

OUT (JSON): the checkpoints' folders; `items`: the replay items of the saver and of the fresh server;
`held`: the file names of the written chunks the saver holds after B; `loaded`: per chunk the fresh
server loaded, the keys whose arrays differ from the saver's in-memory chunk; `rewritten`: the keys the
official train step wrote back into the replay (its replay-context latents) and `rewritten_chunks`,
the names of the chunks it wrote them into after A.
"""

import json
import pathlib
import sys

import elements
import numpy as np

from agents.official.server import Server
from harness.rundir import RunDir

EPISODE = 50


def play(server: Server, space: dict, steps: int, start: int, rng: np.random.Generator) -> None:
    handle = None
    for t in range(start, start + steps):
        obs = {key: rng.normal(size=(1, *shape)).astype(dtype) for key, (dtype, shape, *_) in space.items()}
        obs["is_first"] = np.array([t % EPISODE == 0])
        obs["is_last"] = np.array([t % EPISODE == EPISODE - 1])
        obs["is_terminal"] = np.zeros(1, bool)
        _, handle = server.act(obs, "train", None if t == start else handle)
        server.step(obs)


def main() -> None:
    settings_file, work, fill, more, out = sys.argv[1:]
    settings = json.loads(pathlib.Path(settings_file).read_text())
    work, fill, more = pathlib.Path(work), int(fill), int(more)
    space = {k: v for k, v in settings["obs"].items() if k not in ("is_first", "is_last", "is_terminal")}
    rng = np.random.default_rng(0)

    def save(server: Server, step: int, run: RunDir = RunDir(work / "run")) -> pathlib.Path:
        def save_agent(directory: pathlib.Path) -> None:  # as harness/loop.py's save()
            (directory / "agent").mkdir()
            server.save(str((directory / "agent").resolve()))  # as agents/official/agent.py
        return run.save_checkpoint(step, {"agent_step": step}, save_agent)

    saver = Server(**settings, scratch=str(work / "scratch-saver"))
    play(saver, space, fill, 0, rng)
    a = save(saver, fill)
    rewritten, rewritten_chunks = set(), set()
    update = saver.replay.update

    def recording_update(data):
        for key in data:
            if key not in ("stepid", "priority"):
                rewritten.add(key)
        for stepid in data["stepid"].reshape(-1, data["stepid"].shape[-1]):
            chunk = saver.replay.chunks.get(elements.UUID(stepid.tobytes()[:-4]))
            if chunk is not None and chunk.uuid in saver.replay.saved:
                rewritten_chunks.add(chunk.filename)
        return update(data)

    saver.replay.update = recording_update
    play(saver, space, more, fill, rng)
    b = save(saver, fill + more)
    held = sorted(saver.replay.chunks[u].filename for u in saver._written_chunks())

    fresh = Server(**settings, scratch=str(work / "scratch-fresh"))
    fresh.load(str(b / "agent"))
    loaded = {}
    for uuid, chunk in fresh.replay.chunks.items():
        if not chunk.length:
            continue
        mine = saver.replay.chunks[uuid]
        assert mine.length == chunk.length and set(mine.data) == set(chunk.data), chunk.filename
        loaded[chunk.filename] = sorted(k for k in chunk.data
                                        if not np.array_equal(mine.data[k][:mine.length], chunk.data[k][:chunk.length]))
    c = save(fresh, fill + more + 1, RunDir(work / "run-c"))  # A stays
    pathlib.Path(out).write_text(json.dumps({
        "a": str(a), "b": str(b), "c": str(c), "items": [len(saver.replay), len(fresh.replay)], "held": held,
        "loaded": loaded, "rewritten": sorted(rewritten), "rewritten_chunks": sorted(rewritten_chunks)}))


if __name__ == "__main__":
    main()
