"""Loaders: run directories and published score files into one tidy table.

`load(paths)` returns a `Data` with
  episodes: one row per finished episode (or published point / final score), columns
            `suite, task, method, seed, step, score, mode, source` plus `origin` (the file or run
            directory) and suite extras (`achievement_<name>` counts for Crafter).
            mode: 'train' | 'eval' (periodic evaluation) | 'final' (evaluation after training, and
            published per-run final scores); source: 'new' (this project's runs) | 'logdir' (official
            DreamerV3 log directories) | 'published'.
  runs:     one row per run (suite, task, method, seed, source) with what the report needs to judge it:
            budget, final-score rule, normaliser, state, protocol overrides and compute (runinfo.py).
  warnings: what could not be loaded as asked, in words.
Task names are canonical (names.py); step is env frames (Atari) or env steps.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from results import reference
from results.names import SUITE_FAMILY, canonical_suite, canonical_task, family_of
from results.runinfo import logdir_info, published_run_info, run_dir_info

COLUMNS = ["suite", "task", "method", "seed", "step", "score", "mode", "source"]
RUN_KEYS = ["suite", "task", "method", "seed", "source"]
# Files of a run directory that are not score files of their own.
RUN_FILES = {"config.yaml", "meta.json", "status.json", "metrics.jsonl", "scores.jsonl"}
REFERENCE_KEYS = {"random", "human_gamer", "human_record"}
# Published file names that announce their suite.
FILE_PREFIX_SUITE = {"atari100k": "atari26", "atari57": "atari57", "dmc_proprio": "dmc_proprio",
                     "dmc_vision": "dmc_vision", "dmc-vision": "dmc_vision", "atari-": "atari57",
                     "dmlab30": "dmlab30", "procgen": "procgen", "minecraft": "minecraft",
                     "crafter": "crafter"}


@dataclass
class Data:
    episodes: pd.DataFrame
    runs: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    origin: str = ""  # the file or run directory it came from, when it is one

    def select(self, suite: str | None = None, methods: list[str] | None = None) -> "Data":
        """The rows of one suite and/or some methods."""
        keep_e = pd.Series(True, index=self.episodes.index)
        keep_r = pd.Series(True, index=self.runs.index)
        if suite:
            keep_e &= self.episodes["suite"] == suite
            keep_r &= self.runs["suite"] == suite
        if methods:
            keep_e &= self.episodes["method"].isin(methods)
            keep_r &= self.runs["method"].isin(methods)
        return Data(self.episodes[keep_e], self.runs[keep_r], list(self.warnings))


def concat(parts: list[Data]) -> Data:
    """One Data from several; a run found twice (same suite, task, method, seed and source in two
    places) is kept once, from the first place, with a warning."""
    episodes = [p.episodes for p in parts if len(p.episodes)]
    runs = pd.DataFrame([r for p in parts for r in p.runs.to_dict("records")], columns=parts[0].runs.columns
                        if parts and len(parts[0].runs.columns) else RUN_KEYS)
    warnings = [w for p in parts for w in p.warnings]
    episodes = pd.concat(episodes, ignore_index=True) if episodes else pd.DataFrame(columns=COLUMNS + ["origin"])
    twice = runs.duplicated(RUN_KEYS)
    for run in runs[twice].itertuples():
        first = runs.loc[(runs[RUN_KEYS] == [getattr(run, k) for k in RUN_KEYS]).all(axis=1), "origin"].iloc[0]
        warnings.append(f"run {run.suite}/{run.method}/{run.task}/seed{run.seed} is in both {first} and "
                        f"{run.origin}; only the first counts")
    if twice.any():
        runs = runs[~twice]
        episodes = episodes.merge(runs[RUN_KEYS + ["origin"]], on=RUN_KEYS + ["origin"])
    return Data(episodes, runs.reset_index(drop=True), warnings)


def load(paths: list[str | Path], suite: str | None = None) -> Data:
    """Load run directories, DreamerV3 log directories and published files (folders are searched)."""
    parts = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or directory: {path}")
        parts.extend(_load_any(path, suite))
    seen: set[str] = set()  # a file or run directory named twice (a folder and a file in it) loads once
    parts = [p for p in parts if not (p.origin in seen or seen.add(p.origin))]
    data = concat(parts)
    return data.select(canonical_suite(suite)) if suite else data


def _load_any(path: Path, suite: str | None) -> list[Data]:
    if path.is_file():
        if path.name in RUN_FILES:
            return _load_any(path.parent, suite)
        indexed = _index_entry(path, suite).get("suite")
        if suite and indexed and indexed != canonical_suite(suite):
            return []  # another suite's file: not worth parsing
        named = _suite_from_name(path)
        if suite and named and SUITE_FAMILY[named] != SUITE_FAMILY[canonical_suite(suite)]:
            return []
        return [load_published_file(path, suite)]
    if (path / "status.json").exists() and not (path / "config.yaml").exists():
        return [Data(pd.DataFrame(columns=COLUMNS), pd.DataFrame(columns=RUN_KEYS),
                     [f"{path}: a run directory without config.yaml (not started?) is left out"])]
    if (path / "scores.jsonl").exists() or (path / "status.json").exists():
        return [load_run(path, suite)]
    found = []
    for child in sorted(path.iterdir()):
        if child.name == "checkpoint" or child.name.startswith("."):
            continue
        if child.is_dir() or child.name.endswith((".json", ".json.gz", ".yaml")):
            found.extend(_load_any(child, suite))
    return found


# ---------------------------------------------------------------- run directories and DreamerV3 logs

def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """JSON lines; a torn last line (the run is still writing) is dropped."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i != len(lines) - 1:
                raise ValueError(f"{path}:{i + 1}: not a JSON line: {line[:80]!r}") from None
    return rows


def load_run(path: Path, suite: str | None = None) -> Data:
    """A run directory of this project (RUNDIR format 1), or an official DreamerV3 log directory."""
    config_path = path / "config.yaml"
    config = yaml.safe_load(config_path.read_text()) if config_path.exists() else {}
    if "format" in config:
        info = run_dir_info(path, config)
        source = "new"
    else:
        info = logdir_info(path, config, suite)
        source = "logdir"
    rows = read_jsonl(path / "scores.jsonl")
    frame = pd.DataFrame(rows)
    episodes = pd.DataFrame({
        "step": frame.get("step", pd.Series(dtype=float)).astype(float),
        "score": frame.get("episode/score", pd.Series(dtype=float)).astype(float),
    })
    mode = frame["mode"] if "mode" in frame else pd.Series("train", index=frame.index)
    if "final" in frame:
        mode = mode.where(~frame["final"].fillna(False).astype(bool), "final")
    episodes["mode"] = mode.values if len(frame) else []
    for column in frame.columns:
        if column.startswith("log/"):  # suite extras, e.g. log/achievement_collect_wood
            episodes[column.removeprefix("log/")] = frame[column].values
    for key in ("suite", "task", "method", "seed"):
        episodes[key] = info[key]
    episodes["source"] = source
    episodes["origin"] = str(path)
    info["source"] = source
    return Data(episodes, pd.DataFrame([info]), origin=str(path.resolve()))


# ---------------------------------------------------------------- published files

def read_json(path: Path) -> Any:
    """JSON or gzip JSON; the DreamerV3 files write NaN bins as null or NaN."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def _index_entry(path: Path, suite: str | None = None) -> dict[str, Any]:
    """The published.yaml entry whose file path ends this path (gzipped or not), or {}; of the entries
    of one file (DreamerV2's Atari file serves atari57 and atari57_dreamerv2), the one of `suite`."""
    resolved = path.as_posix().removesuffix(".gz")
    entries = [e for e in reference.published_index() if resolved == e["file"].removesuffix(".gz")
               or resolved.endswith("/" + e["file"].removesuffix(".gz"))]
    wanted = canonical_suite(suite) if suite else None
    return next((e for e in entries if e["suite"] == wanted), entries[0] if entries else {})


def _suite_from_name(path: Path) -> str | None:
    for prefix, suite in FILE_PREFIX_SUITE.items():
        if path.name.startswith(prefix):
            return suite
    return None


def load_published_file(path: Path, suite: str | None = None) -> Data:
    """One published file, in any of the formats of published.yaml (detected from its content)."""
    entry = _index_entry(path, suite)
    suite = entry.get("suite") or _suite_from_name(path) or (canonical_suite(suite) if suite else None)
    content = yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else read_json(path)
    method = entry.get("method") or path.name.split(".")[0].lower()
    if isinstance(content, list) and content and "ys" in content[0]:
        records = _curve_records(content, entry.get("mode", "train"))
    elif isinstance(content, list) and content and "length" in content[0]:
        records = _crafter_records(content)
    elif isinstance(content, list) and content and "HNS" in content[0]:
        records = _curl_records(content, method)
    elif isinstance(content, dict) and all(isinstance(v, list) for v in content.values()):
        records = [{"task": t, "method": method, "seed": i, "step": np.nan, "score": float(s), "mode": "final"}
                   for t, scores in content.items() for i, s in enumerate(scores)]
    elif isinstance(content, dict) and all(isinstance(v, dict) for v in content.values()):
        records = _table_records(content)
    else:
        raise ValueError(f"{path}: not a known score format (see results/reference/published.yaml)")
    episodes = records if isinstance(records, pd.DataFrame) else pd.DataFrame.from_records(records)
    episodes, warnings = _canonicalise(episodes, suite, path)
    episodes["source"] = "published"
    episodes["origin"] = str(path)
    runs = episodes.drop_duplicates(["suite", "task", "method", "seed"])[["suite", "task", "method", "seed"]]
    runs = pd.DataFrame([published_run_info(r, entry, str(path)) for r in runs.to_dict("records")])
    runs["source"] = "published"
    return Data(episodes, runs, warnings, origin=str(path.resolve()))


def _seed(value: Any) -> int | str:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return str(value)


def _curve_records(runs: list[dict], mode: str) -> pd.DataFrame:
    frames = []
    for run in runs:
        ys = np.array(run["ys"], dtype=float)  # null -> NaN
        keep = np.isfinite(ys)  # binned files leave empty bins as NaN
        frames.append(pd.DataFrame({"task": run["task"], "method": run["method"], "seed": _seed(run["seed"]),
                                    "step": np.asarray(run["xs"], dtype=float)[keep], "score": ys[keep],
                                    "mode": mode}))
    return pd.concat(frames, ignore_index=True)


def _crafter_records(runs: list[dict]) -> list[dict]:
    records = []
    for run in runs:
        achievements = [k for k in run if k.startswith("achievement_")]
        for i, x in enumerate(run["xs"]):
            record = {"task": run["task"], "method": run["method"], "seed": _seed(run["seed"]),
                      "step": float(x), "score": float(run["reward"][i]), "mode": "train"}
            record.update({k: run[k][i] for k in achievements})
            records.append(record)
    return records


def _curl_records(rows: list[dict], method: str) -> list[dict]:
    """CURL's file holds human-normalised scores; turn them back into game scores."""
    atari = reference.table("atari_scores.csv").set_index("game")
    return [{"task": r["game"], "method": method, "seed": _seed(r["seed"]), "step": np.nan,
             "score": r["HNS"] * (atari.human[r["game"]] - atari.random[r["game"]]) + atari.random[r["game"]],
             "mode": "final"} for r in rows]


def _table_records(table: dict[str, dict]) -> list[dict]:
    """{task: {method: score}} (one published number per task) or baselines.yaml {section: {task: [lo, hi]}}.

    DreamerV2's table also lists the random and human reference scores; those come from the reference
    tables (with their defects fixed) instead.
    """
    records = []
    for key, values in table.items():
        for name, value in values.items():
            if isinstance(value, list):  # baselines.yaml: key is a section, name a task
                for method, score in zip(("random", "human"), value):
                    records.append({"task": name, "method": method, "seed": 0, "step": np.nan,
                                    "score": float(score), "mode": "final"})
            elif name not in REFERENCE_KEYS:
                records.append({"task": key, "method": name, "seed": 0, "step": np.nan,
                                "score": float(value), "mode": "final"})
    return records


def _canonicalise(episodes: pd.DataFrame, suite: str | None, path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Give each row its suite and canonical task name; rows of unknown tasks are dropped with a warning."""
    names = episodes["task"].unique()
    mapping, suites, warnings = {}, {}, []
    for name in names:
        family = family_of(name)
        row_suite = suite
        if family and (suite is None or not _same_family(suite, family)):
            row_suite = {"atari": "atari57", "dmc": "dmc_vision"}.get(family, family)
        if row_suite is None:
            raise ValueError(f"{path}: cannot tell the suite of task '{name}'; pass --suite")
        try:
            mapping[name] = canonical_task(row_suite, name)
            suites[name] = row_suite
        except ValueError:
            warnings.append(f"{path.name}: task '{name}' is not a known {row_suite} task; its rows are left out")
    episodes = episodes[episodes["task"].isin(mapping)].copy()
    episodes["suite"] = episodes["task"].map(suites)
    episodes["task"] = episodes["task"].map(mapping)
    return episodes, warnings


def _same_family(suite: str, family: str) -> bool:
    return SUITE_FAMILY[canonical_suite(suite)] == family
