"""The chunked replay: windows hold exactly the stored steps, memory and checkpoints scale with what is new,
and a resumed replay continues bit for bit (latents as they were when their chunk was first saved)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from agents.dreamer.replay import LATENTS, Replay
from harness.rundir import MANIFEST, RunDir, read_json, verify_checkpoint

NUM_ENVS, LENGTH = 2, 5


def step(t: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One step of every env: an image-like key, the loop flags and the two latents."""
    return {"image": rng.integers(0, 255, (NUM_ENVS, 4, 4, 1), np.uint8),
            "reward": rng.normal(size=NUM_ENVS).astype(np.float32), "is_first": np.full(NUM_ENVS, t % 9 == 0),
            "deter": rng.normal(size=(NUM_ENVS, 6)).astype(np.float32),
            "stoch": rng.normal(size=(NUM_ENVS, 2, 3)).astype(np.float32)}


def fill(replay: Replay, steps: int, seed: int, history: dict[str, list] | None = None) -> None:
    rng = np.random.default_rng(seed)
    for t in range(replay.count, replay.count + steps):
        values = step(t, rng)
        replay.add(values)
        for k, v in values.items():
            if history is not None:
                history.setdefault(k, []).append(v)


def latents_for(starts: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"deter": rng.normal(size=(len(starts), LENGTH - 1, 6)).astype(np.float32),
            "stoch": rng.normal(size=(len(starts), LENGTH - 1, 2, 3)).astype(np.float32)}


@pytest.mark.parametrize("chunk", [3, 7, 1024])
@pytest.mark.parametrize("store", ["memory", "disk"])
def test_windows_hold_the_stored_steps_and_latents_land_where_written(tmp_path, chunk, store):
    replay = Replay(60, NUM_ENVS, LENGTH, online=True, seed=0, chunk=max(chunk, 3), store=store,
                    directory=tmp_path / "replay")
    history: dict[str, list] = {}
    fill(replay, 70, seed=1, history=history)  # past the capacity: the oldest steps are gone
    truth = {k: np.stack(v, 1) for k, v in history.items()}  # (num_envs, steps, ...)
    for round_ in range(4):
        data, envs, starts = replay.sample(8)
        assert starts.min() >= replay.oldest and starts.max() <= replay.count - LENGTH
        for i, (env, start) in enumerate(zip(envs, starts)):
            for k in truth:
                np.testing.assert_array_equal(data[k][i], truth[k][env, start:start + LENGTH])
        written = latents_for(starts, seed=round_)
        replay.write_latents(envs, starts, written)
        for i, (env, start) in enumerate(zip(envs, starts)):
            for k in LATENTS:
                truth[k][env, start + 1:start + LENGTH] = written[k][i]
    held = replay.stored()
    for k in truth:
        np.testing.assert_array_equal(held[k], truth[k][:, replay.oldest:])


def test_sampling_draws_are_the_replays_own_rng():
    """Without an online queue, the windows are uniform draws: env, then start in [oldest, count - length]."""
    replay = Replay(1000, NUM_ENVS, LENGTH, online=False, seed=3, chunk=7)
    fill(replay, 40, seed=0)
    rng = np.random.default_rng(3)
    _, envs, starts = replay.sample(16)
    np.testing.assert_array_equal(envs, rng.integers(0, NUM_ENVS, 16))
    np.testing.assert_array_equal(starts, rng.integers(0, 40 - LENGTH + 1, 16))


@pytest.mark.parametrize("store", ["memory", "disk"])
def test_memory_and_disk_hold_only_what_capacity_keeps(tmp_path, store):
    replay = Replay(40, NUM_ENVS, LENGTH, online=False, seed=0, chunk=4, store=store, directory=tmp_path / "r")
    fill(replay, 202, seed=0)  # 50 full chunks and an open one
    per_stream = 40 // NUM_ENVS
    assert len(replay.chunks) <= per_stream // 4 + 2  # the capacity's chunks, one partly out of reach, the open one
    in_ram = [k for i, arrays in replay.chunks.items() for k, v in arrays.items() if not isinstance(v, np.memmap)]
    if store == "disk":  # only the open chunk is in RAM; evicted chunks are gone from the disk too
        assert len(in_ram) == len(replay.chunks[max(replay.chunks)])
        assert sorted(int(p.name) for p in (tmp_path / "r/live").iterdir()) == sorted(replay.chunks)[:-1]
    else:
        assert len(in_ram) == len(replay.chunks) * 5


@pytest.mark.parametrize("store", ["memory", "disk"])
def test_resume_continues_bit_for_bit(tmp_path, store):
    def make(name: str) -> Replay:
        return Replay(100, NUM_ENVS, LENGTH, online=True, seed=5, chunk=8, store=store, directory=tmp_path / name)

    def train_save_and_resume(name: str, seed: int) -> Replay:
        """Rewrite the latents of 6 windows, checkpoint, and load the checkpoint into a new replay."""
        _, envs, starts = original.sample(6)
        original.write_latents(envs, starts, latents_for(starts, seed=seed))
        (tmp_path / f"ck{seed}").mkdir()
        original.save(tmp_path / f"ck{seed}")
        resumed = make(name)
        resumed.load(tmp_path / f"ck{seed}")
        return resumed

    original = make("a")
    fill(original, 43, seed=0)
    resumed = train_save_and_resume("b", seed=0)
    for k, v in original.stored().items():
        np.testing.assert_array_equal(resumed.stored()[k], v)
    for replay in (original, resumed):  # the same steps and draws from here on give the same windows
        fill(replay, 30, seed=1)
    for _ in range(3):
        (a, ea, sa), (b, eb, sb) = original.sample(6), resumed.sample(6)
        np.testing.assert_array_equal(ea, eb)
        np.testing.assert_array_equal(sa, sb)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])

    # Latents rewritten after their chunk was saved are not saved again (as the official replay's chunks)
    frozen = original.stored()["deter"].copy()
    again = train_save_and_resume("c", seed=1)
    new, old, first = again.stored(), original.stored(), original.oldest
    for k in new:
        if k not in LATENTS:
            np.testing.assert_array_equal(new[k], old[k])
    # chunks 0-4 (steps 0-39) were full at the first checkpoint and keep their latents of then; chunks 5-8
    # were first saved at the second and chunk 9 is open: today's latents
    np.testing.assert_array_equal(new["deter"][:, :40 - first], frozen[:, :40 - first])
    np.testing.assert_array_equal(new["deter"][:, 40 - first:], old["deter"][:, 40 - first:])
    assert not np.array_equal(old["deter"][:, :40 - first], frozen[:, :40 - first])  # the rewrite reached them


def saved_bytes(replay_steps: int, tmp_path: Path) -> tuple[int, int, int, int]:
    """Bytes of the first checkpoint of a run with a replay of `replay_steps` steps, and of what the second
    one, 64 new steps later, writes (files not the same as one of the first): its chunk data, its
    metadata (manifest and replay.json, a line per held file) and the number of files it holds."""
    run = RunDir(tmp_path)
    replay = Replay(10**6, NUM_ENVS, LENGTH, online=False, seed=0, chunk=32, directory=tmp_path / "replay")
    fill(replay, replay_steps, seed=0)

    def save(directory: Path) -> None:
        (directory / "agent").mkdir()
        replay.save(directory / "agent")

    first = run.save_checkpoint(1, {}, save)
    fill(replay, 64, seed=1)
    second = run.save_checkpoint(2, {}, save)
    assert verify_checkpoint(first) is None and verify_checkpoint(second) is None
    old = {f.stat().st_ino for f in first.rglob("*") if f.is_file()}
    written = [f for f in second.rglob("*") if f.is_file() and f.stat().st_ino not in old]
    data = sum(f.stat().st_size for f in written if f.suffix == ".npy")
    meta = sum(f.stat().st_size for f in written if f.suffix != ".npy")
    return sum(f.stat().st_size for f in first.rglob("*") if f.is_file()), data, meta, len(list(second.rglob("*")))


def test_a_checkpoint_writes_what_is_new_not_the_replay(tmp_path):
    small_first, small_data, small_meta, small_files = saved_bytes(256, tmp_path / "small")
    large_first, large_data, large_meta, large_files = saved_bytes(16 * 256, tmp_path / "large")
    assert large_first > 12 * small_first  # the first checkpoint holds the whole replay
    assert large_data == small_data < small_first / 2  # the second: the chunks filled since and the open one
    assert large_meta - small_meta < 200 * (large_files - small_files)  # and a manifest line per file held


def test_carried_files_are_links_the_manifest_does_not_hash_again(tmp_path):
    run = RunDir(tmp_path)
    replay = Replay(10**6, NUM_ENVS, LENGTH, online=False, seed=0, chunk=16, directory=tmp_path / "replay")
    fill(replay, 50, seed=0)

    def save(directory: Path) -> None:
        (directory / "agent").mkdir()
        replay.save(directory / "agent")

    first = run.save_checkpoint(1, {}, save)
    second = run.save_checkpoint(2, {}, save)
    manifest = read_json(second / MANIFEST)["files"]
    linked = sorted(name for name, entry in manifest.items() if entry.get("linked"))
    assert linked and all(name.startswith("agent/replay/00000000") for name in linked)
    assert all(os.path.samefile(first / name, second / name) for name in linked)
    assert not any(manifest[name].get("linked") for name in manifest if "/open/" in name)
    # a torn newly written file is found; a linked file of another size too
    open_file = next(second.glob("agent/replay/open/*.npy"))
    with open(open_file, "r+b") as f:
        f.truncate(open_file.stat().st_size - 1)
    assert "open" in verify_checkpoint(second)


def test_a_replay_resumes_past_a_chunk_a_kill_left_half_written(tmp_path):
    replay = Replay(1000, NUM_ENVS, LENGTH, online=False, seed=0, chunk=8, store="disk", directory=tmp_path / "r")
    fill(replay, 30, seed=0)
    (tmp_path / "ck").mkdir()
    replay.save(tmp_path / "ck")
    torn = tmp_path / "r/live/000000003.tmp"  # a kill while chunk 3 was being written
    torn.mkdir()
    (torn / "image.npy").write_bytes(b"\x93NUMPY")
    resumed = Replay(1000, NUM_ENVS, LENGTH, online=False, seed=0, chunk=8, store="disk", directory=tmp_path / "r")
    resumed.load(tmp_path / "ck")
    assert sorted(p.name for p in (tmp_path / "r/live").iterdir()) == ["000000000", "000000001", "000000002"]
    fill(resumed, 10, seed=1)  # chunk 3 fills and is written again, whole
    assert np.load(tmp_path / "r/live/000000003/image.npy").shape == (NUM_ENVS, 8, 4, 4, 1)


def test_settings_that_cannot_work_are_refused(tmp_path):
    with pytest.raises(ValueError, match="valid: memory, disk"):
        Replay(100, 1, 5, False, 0, store="ssd", directory=tmp_path)
    with pytest.raises(ValueError, match="needs a directory"):
        Replay(100, 1, 5, False, 0, store="disk")
    replay = Replay(100, 1, 5, False, 0, chunk=8)
    replay.add({"x": np.zeros((1, 2))})
    (tmp_path / "ck").mkdir()
    replay.save(tmp_path / "ck")
    with pytest.raises(ValueError, match="chunks of 8 steps; agent.replay.chunk is 16"):
        Replay(100, 1, 5, False, 0, chunk=16).load(tmp_path / "ck")
