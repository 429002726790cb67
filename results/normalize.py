"""Normalisers: how the selected episodes of one run become one comparable number.

Scalar normalisers map the mean episode score of a run: `raw` (DMC returns, classic control),
`atari_human` ((x - random) / (human - random)), `atari_record` (world record instead of human),
`atari_record_clipped` (min(record-normalised, 1)), `dmlab_capped`, `procgen_minmax`, `classic_minmax`
((x - random) / (max - random) per classic-control task: 0 is the random policy, 1 the most a return
can be; reference/classic_scores.csv).
Episode normalisers reduce the episodes themselves: `crafter` (Crafter score from achievement success
rates) and `diamond` (1 if an episode found a diamond, so the mean over runs is the diamond rate).
Reference scores come from results/reference (atari_scores.csv, bounds.csv, classic_scores.csv).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from results import reference

SCALAR = ["raw", "atari_human", "atari_record", "atari_record_clipped", "dmlab_capped", "procgen_minmax",
          "classic_minmax"]
EPISODE = ["crafter", "diamond"]
ALIASES = {"human": "atari_human", "hns": "atari_human", "atari_hns": "atari_human",
           "human_normalised": "atari_human", "record": "atari_record", "clipped_record": "atari_record_clipped",
           "crafter_score": "crafter", "diamond_rate": "diamond", "minecraft_diamond": "diamond", "none": "raw", "return": "raw"}
# A Minecraft episode's return counts milestones (+1 each of 12, the diamond last): above 11.5 found one.
# Runs of this project also log the milestone itself (suites/minecraft.py), which is used when present.
DIAMOND_RETURN = 11.5
DIAMOND_MILESTONE = "milestone_diamond"
LABELS = {"raw": "score", "atari_human": "human-normalised score", "atari_record": "record-normalised score",
          "atari_record_clipped": "clipped record-normalised score", "dmlab_capped": "capped human-normalised score",
          "procgen_minmax": "min-max normalised score", "classic_minmax": "random-to-max normalised return", "crafter": "Crafter score (%)", "diamond": "diamond rate"}


def canonical(name: str) -> str:
    """The canonical normaliser name; raises ValueError listing the valid ones."""
    name = ALIASES.get(name, name)
    if name not in SCALAR + EPISODE:
        valid = SCALAR + EPISODE + sorted(ALIASES)
        raise ValueError(f"unknown normaliser '{name}'; valid normalisers: {', '.join(valid)}")
    return name


def _bounds(name: str, tasks: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    if name.startswith("atari"):
        table = reference.table("atari_scores.csv").set_index("task")
        high = table["human"] if name == "atari_human" else table["record"]
        low = table["random"]
    elif name == "classic_minmax":
        table = reference.table("classic_scores.csv").set_index("task")
        low, high = table["random"], table["max"]
    else:
        table = reference.table("bounds.csv")
        table = table[table["suite"] == ("dmlab30" if name == "dmlab_capped" else "procgen")].set_index("task")
        low, high = table["low"], table["high"]
    unknown = sorted(set(tasks) - set(low.index))
    if unknown:
        raise ValueError(f"normaliser '{name}' has no reference scores for tasks {unknown}")
    return low.reindex(tasks).to_numpy(), high.reindex(tasks).to_numpy()


def normalise(name: str, tasks: pd.Series, scores: pd.Series) -> np.ndarray:
    """Scalar-normalise the run means `scores` of `tasks` (canonical names) with normaliser `name`."""
    name = canonical(name)
    scores = np.asarray(scores, dtype=float)
    if name == "raw" or name in EPISODE:
        return scores
    low, high = _bounds(name, pd.Series(tasks))
    normalised = (scores - low) / (high - low)  # NaN where a record is unknown (Surround)
    if name in ("atari_record_clipped", "dmlab_capped"):
        normalised = np.minimum(normalised, 1.0)
    return normalised


# Official DreamerV3 Crafter logs have none: its env logs them only with `env.crafter.logs: True`.
CRAFTER_UNSCORED = "no Crafter score: its episodes have no achievement counts (log/achievement_*)"


def achievement_columns() -> list[str]:
    return list(reference.table("crafter_achievements.csv")["stats_key"])


def crafter_score(success_percent: np.ndarray) -> np.ndarray:
    """Crafter's score: exp(mean_i ln(1 + s_i)) - 1 over the 22 success rates s_i in percent (last axis)."""
    success_percent = np.asarray(success_percent, dtype=float)
    if np.any(success_percent < 0) or np.any(success_percent > 100):
        raise ValueError("Crafter success rates must be percentages in [0, 100]")
    return np.exp(np.mean(np.log1p(success_percent), axis=-1)) - 1


def reduce_runs(name: str, episodes: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One value per run (grouped by `keys`) from its selected episodes: column `raw`, plus `n_episodes` and
    `unscored` (why `raw` is NaN when the episodes cannot give the score, else "")."""
    name = canonical(name)
    groups = episodes.groupby(keys, sort=False)
    result = groups["score"].agg(n_episodes="size", raw="mean").reset_index()
    result["unscored"] = ""
    if name == "crafter":
        columns = achievement_columns()
        counts = episodes.reindex(columns=columns)
        # A run is scored only when every one of its episodes has all 22 achievement counts.
        counted = counts.notna().all(axis=1).groupby([episodes[k] for k in keys], sort=False).all()
        counted = result.merge(counted.rename("counted").reset_index(), on=keys)["counted"].to_numpy()
        unlocked = (counts >= 1).astype(float)
        rates = unlocked.groupby([episodes[k] for k in keys], sort=False).mean().reset_index()
        rates = result[keys].merge(rates, on=keys, how="left")[columns].to_numpy()
        returns = result["raw"].to_numpy()
        result["raw"] = np.where(counted, crafter_score(100 * np.nan_to_num(rates)), np.nan)
        result.loc[~counted, "unscored"] = [f"{CRAFTER_UNSCORED}; mean return {r:.2f} over {n} episodes"
                                            for r, n in zip(returns[~counted], result["n_episodes"][~counted])]
    elif name == "diamond":
        if DIAMOND_MILESTONE in episodes and episodes[DIAMOND_MILESTONE].notna().any():
            found = episodes[DIAMOND_MILESTONE].fillna(0) >= 1
        else:
            found = episodes["score"] > DIAMOND_RETURN
        result["raw"] = found.groupby([episodes[k] for k in keys], sort=False).any().astype(float).to_numpy()
    return result
