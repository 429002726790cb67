"""Replay (as the 2024 code's, danijar/dreamerv3 @ e3f0224): one time-ordered stream per env, FIFO at capacity,
uniform windows, and the online queue that hands every new non-overlapping window to training once, first.

Each stored step holds the observation, the action taken there, the loop flags, and the policy's
latent state after observing it. A sampled window of `length` steps starts with a context step whose
latent starts the RSSM filter ("latent replay"); `write_latents` stores the freshly computed
posteriors of the other steps after each update.

Storage is in chunks of `chunk` steps of every env stream (arrays (num_envs, chunk, ...)), so that memory and
checkpoints scale with what is new, not with what is held:
- A full chunk is written once, at the first checkpoint after it fills, into `directory`; every checkpoint
  that holds it hard-links that file, so a checkpoint writes only the open chunk and the chunks filled since.
- `store="disk"` also writes each chunk to `directory` as it fills and memory-maps it from there, so RAM
  holds only the open chunk whatever the capacity.
- Latents, which training rewrites everywhere, are saved as they are when their chunk is first written and
  not again (as the official replay's chunks); a resumed run starts from those. Everything else resumes
  bit for bit: steps, online queue, sampling RNG.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import deque
from pathlib import Path

import numpy as np

LATENTS = ("deter", "stoch")  # rewritten by training; every other key is fixed once stored
STORES = ("memory", "disk")


class Replay:
    def __init__(self, capacity: int, num_envs: int, length: int, online: bool, seed: int,
                 chunk: int = 1024, store: str = "memory", directory: Path | None = None):
        if store not in STORES:
            raise ValueError(f"unknown replay store {store!r}; valid: {', '.join(STORES)}")
        if store == "disk" and directory is None:
            raise ValueError("replay store 'disk' needs a directory for its chunks")
        self.num_envs, self.length, self.online = num_envs, length, online
        self.cap = max(length, int(capacity) // num_envs)  # steps per env stream
        self.chunk = int(chunk)
        self.store = store
        self.directory = Path(directory) if directory is not None else None
        if self.directory:  # what an earlier session left: `load` links back what its checkpoint holds
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory.mkdir(parents=True)
        self.chunks: dict[int, dict[str, np.ndarray]] = {}  # chunk index -> arrays (num_envs, chunk, ...)
        self.count = 0  # steps written per stream since the start
        self.next_window = 0  # first step of the next window to queue for online training
        self.queue: deque[tuple[int, int]] = deque()
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return min(self.count, self.cap) * self.num_envs

    @property
    def oldest(self) -> int:
        """The first step of every stream that windows may still use."""
        return max(0, self.count - self.cap)

    def add(self, step: dict[str, np.ndarray]) -> None:
        """Append one step of every env: each value has the leading axis num_envs."""
        index, offset = divmod(self.count, self.chunk)
        if offset == 0:
            self.chunks[index] = {k: np.zeros((self.num_envs, self.chunk, *np.shape(v)[1:]), np.asarray(v).dtype)
                                  for k, v in step.items()}
        for k, v in step.items():
            self.chunks[index][k][:, offset] = v
        self.count += 1
        if offset == self.chunk - 1 and self.store == "disk":
            self._spill(index)
        while (first := min(self.chunks)) * self.chunk + self.chunk <= self.oldest:  # wholly out of reach
            self._evict(first)
        if self.online and self.count - self.next_window >= self.length:
            self.queue.extend((env, self.next_window) for env in range(self.num_envs))
            self.next_window += self.length

    def sample(self, batch: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """`batch` windows: (data with leaves (batch, length, ...), env index, first step of each)."""
        envs, starts = [], []
        while self.queue and len(envs) < batch:
            env, start = self.queue.popleft()
            if start >= self.oldest:
                envs.append(env)
                starts.append(start)
        rest = batch - len(envs)
        envs = np.concatenate([np.asarray(envs, np.int64), self.rng.integers(0, self.num_envs, rest)])
        starts = np.concatenate(
            [np.asarray(starts, np.int64), self.rng.integers(self.oldest, self.count - self.length + 1, rest)]
        )
        first = self.chunks[min(self.chunks)]
        data = {k: np.empty((batch, self.length, *v.shape[2:]), v.dtype) for k, v in first.items()}
        for i, (env, start) in enumerate(zip(envs, starts)):
            for index, src, dst in self._pieces(start, self.length):
                for k, v in self.chunks[index].items():
                    data[k][i, dst] = v[env, src]
        return data, envs, starts

    def write_latents(self, envs: np.ndarray, starts: np.ndarray, latents: dict[str, np.ndarray]) -> None:
        """Store posteriors (batch, length - 1, ...) for steps start+1.. of windows still in the buffer."""
        for i, (env, start) in enumerate(zip(envs, starts)):
            if start + 1 < self.oldest:
                continue
            for index, src, dst in self._pieces(start + 1, self.length - 1):
                for k, v in latents.items():
                    self.chunks[index][k][env, src] = v[i, dst]

    def _pieces(self, start: int, length: int) -> list[tuple[int, slice, slice]]:
        """Steps start..start+length-1 of a stream as (chunk index, slice in the chunk, slice in the window)."""
        pieces, step = [], start
        while step < start + length:
            index, offset = divmod(step, self.chunk)
            take = min(self.chunk - offset, start + length - step)
            pieces.append((index, slice(offset, offset + take), slice(step - start, step - start + take)))
            step += take
        return pieces

    def stored(self) -> dict[str, np.ndarray]:
        """Every held step of every stream, oldest first: leaves (num_envs, steps, ...)."""
        indices = sorted(self.chunks)
        skip, stop = self.oldest - indices[0] * self.chunk, self.count - indices[0] * self.chunk
        return {k: np.concatenate([self.chunks[i][k] for i in indices], 1)[:, skip:stop] for k in self.chunks[indices[0]]}

    # ----- disk store and checkpoints --------------------------------------------------------------
    # `directory` holds saved/<index>/, the checkpoint form of each full chunk, written once and hard-linked
    # into every checkpoint that holds the chunk, and (store "disk") live/<index>/, the chunk training reads
    # and rewrites latents in. Without a directory every checkpoint writes every chunk.

    def _folder(self, kind: str, index: int) -> Path:
        return self.directory / kind / f"{index:09d}"

    def _open_index(self) -> int | None:
        """The chunk still filling, None when the last one is full."""
        return self.count // self.chunk if self.count % self.chunk else None

    def _checkpoint_name(self, index: int) -> str:
        """A chunk's folder in a checkpoint's replay/: its index, or `open` for the chunk still filling."""
        return "open" if index == self._open_index() else f"{index:09d}"

    def _spill(self, index: int) -> None:
        """Write a full chunk to live/ and map it from there (latents writable)."""
        _write_chunk(self._folder("live", index), self.chunks[index])
        self.chunks[index] = _map_chunk(self._folder("live", index), writable_latents=True)

    def _evict(self, index: int) -> None:
        del self.chunks[index]
        if self.directory:  # checkpoints holding the chunk keep their links to its files
            for kind in ("live", "saved"):
                shutil.rmtree(self._folder(kind, index), ignore_errors=True)

    def save(self, path: Path) -> None:
        """Write the replay into the checkpoint folder `path`: the open chunk and any full chunk not yet
        saved are written, full chunks saved before are hard-linked."""
        path = Path(path)
        (path / "replay").mkdir()
        for index, arrays in self.chunks.items():
            target = path / "replay" / self._checkpoint_name(index)
            if index == self._open_index() or not self.directory:
                _write_chunk(target, arrays)
                continue
            saved = self._folder("saved", index)
            if not saved.exists():
                if self.store == "disk":  # steps shared with live/, latents frozen as they are now
                    _link_chunk(self._folder("live", index), saved, copy=LATENTS)
                else:
                    _write_chunk(saved, arrays)
            _link_chunk(saved, target)
        meta = {"count": self.count, "next_window": self.next_window, "queue": list(self.queue),
                "rng": self.rng.bit_generator.state, "chunk": self.chunk, "chunks": sorted(self.chunks)}
        (path / "replay.json").write_text(json.dumps(meta))

    def load(self, path: Path) -> None:
        """Read a checkpoint's replay one chunk at a time (never the replay twice in memory)."""
        path = Path(path)
        meta = json.loads((path / "replay.json").read_text())
        if "chunk" not in meta:
            raise ValueError(f"{path} holds a replay in the format before chunks (one replay.npz, dreamerbench "
                             "0.1.0); this version cannot resume it: start the run again (force=true)")
        if meta["chunk"] != self.chunk:
            raise ValueError(f"{path} holds chunks of {meta['chunk']} steps; agent.replay.chunk is {self.chunk}")
        self.count, self.next_window = meta["count"], meta["next_window"]
        self.queue = deque(tuple(x) for x in meta["queue"])
        self.rng.bit_generator.state = meta["rng"]
        self.chunks = {}
        for index in meta["chunks"]:
            source = path / "replay" / self._checkpoint_name(index)
            if self.directory and index != self._open_index():
                _link_chunk(source, self._folder("saved", index))
                source = self._folder("saved", index)
                if self.store == "disk":  # steps shared, latents a private copy that training rewrites
                    _link_chunk(source, self._folder("live", index), copy=LATENTS)
                    self.chunks[index] = _map_chunk(self._folder("live", index), writable_latents=True)
                    continue
            self.chunks[index] = {k: np.array(v) for k, v in _map_chunk(source).items()}


def _write_chunk(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """One .npy file per key, written under a temporary name and renamed: a kill leaves no torn chunk."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for k, v in arrays.items():
        np.save(tmp / f"{k}.npy", v)
    os.replace(tmp, folder)


def _map_chunk(folder: Path, writable_latents: bool = False) -> dict[str, np.ndarray]:
    return {f.stem: np.load(f, mmap_mode="r+" if writable_latents and f.stem in LATENTS else "r")
            for f in sorted(folder.glob("*.npy"))}


def _link_chunk(source: Path, target: Path, copy: tuple[str, ...] = ()) -> None:
    """Hard-link a written chunk's files into another folder (copy those named in `copy`, and all of them
    where the filesystem has no hard links)."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in source.glob("*.npy"):
        if f.stem not in copy:
            try:
                os.link(f, tmp / f.name)
                continue
            except OSError:
                pass
        shutil.copyfile(f, tmp / f.name)
    os.replace(tmp, target)
