"""Final-score rules: which episodes of a run make its final score.

A rule is a dict `{rule: <name>, ...arguments}` as in a suite's `protocol.final_score`:
  train_window     {start, end, mode='train', empty='last'}  mean of episodes ending in [start, end]
                   frames (DreamerV3 Atari100k: start 390000, end 400000); a run with no episode ending
                   in the window (long episodes) counts its last episode before `end` instead
                   (empty='last'; the report lists these runs) or gets NaN (empty='nan')
  eval_after_training                          the evaluation episodes run after the budget
                                               (rows with mode 'final'; published per-run final scores)
  last_fraction    {fraction=0.1, mode='train'} episodes ending in the last `fraction` of the budget
  budget_episodes  {mode='train'}              every episode within the budget (Crafter, Minecraft)
  last_point       {mode='train'}              the last logged point within the budget
Any rule may carry `second: <rule>`, a second rule whose per-task numbers the report shows beside
the first (Atari100k: the evaluation episodes after training). The run's normaliser (normalize.py)
then turns the selected episodes into one number.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from results import normalize
from results.load import RUN_KEYS, Data

RULES = {
    "train_window": {"start": None, "end": None, "mode": "train", "empty": "last"},
    "eval_after_training": {},
    "last_fraction": {"fraction": 0.1, "mode": "train"},
    "budget_episodes": {"mode": "train"},
    "last_point": {"mode": "train"},
}
ALIASES = {"window": "train_window", "eval": "eval_after_training", "final_eval": "eval_after_training",
           "last": "last_point", "all_episodes": "budget_episodes"}


def canonical_rule(rule: dict[str, Any] | str) -> dict[str, Any]:
    """The rule with its name resolved and defaults filled in; raises ValueError on unknown names or arguments."""
    rule = {"rule": rule} if isinstance(rule, str) else dict(rule)
    rule.pop("second", None)
    name = ALIASES.get(rule.get("rule", ""), rule.get("rule", ""))
    if name not in RULES:
        raise ValueError(f"unknown final-score rule '{name}'; valid rules: {', '.join(list(RULES) + sorted(ALIASES))}")
    arguments = {k: v for k, v in rule.items() if k != "rule"}
    unknown = set(arguments) - set(RULES[name])
    if unknown:
        raise ValueError(f"rule '{name}' takes {sorted(RULES[name]) or 'no arguments'}, not {sorted(unknown)}")
    full = {"rule": name, **RULES[name], **arguments}
    if name == "train_window" and (full["start"] is None or full["end"] is None):
        raise ValueError("rule 'train_window' needs start and end (frames)")
    if full.get("empty", "last") not in ("last", "nan"):
        raise ValueError(f"rule '{name}': empty must be 'last' or 'nan', not {full['empty']!r}")
    return full


def second_rule(rule: dict[str, Any] | str) -> dict[str, Any] | None:
    """The rule's `second` rule, canonical, or None."""
    second = rule.get("second") if isinstance(rule, dict) else None
    return canonical_rule(second) if second else None


def parse_rule(text: str) -> dict[str, Any]:
    """A rule from the command line: 'train_window:start=390000,end=400000' or 'last_fraction'."""
    name, _, arguments = text.partition(":")
    rule: dict[str, Any] = {"rule": name}
    for item in filter(None, arguments.split(",")):
        key, _, value = item.partition("=")
        try:
            rule[key] = json.loads(value)
        except json.JSONDecodeError:
            rule[key] = value
    return canonical_rule(rule)


def describe(rule: dict[str, Any]) -> str:
    """The rule in words, for reports."""
    rule = canonical_rule(rule)
    name = rule["rule"]
    if name == "train_window":
        return f"mean of {rule['mode']} episodes ending in [{rule['start']:,}, {rule['end']:,}] frames"
    if name == "eval_after_training":
        return "mean of the evaluation episodes after training"
    if name == "last_fraction":
        return f"mean of {rule['mode']} episodes in the last {rule['fraction']:.0%} of the budget"
    if name == "budget_episodes":
        return f"all {rule['mode']} episodes within the budget"
    return f"last logged {rule['mode']} point within the budget"


def _select(episodes: pd.DataFrame, rule: dict[str, Any]) -> pd.DataFrame:
    """The episodes (already joined with their run's budget_frames) that the rule counts."""
    name = rule["rule"]
    if name == "eval_after_training":
        return episodes[episodes["mode"] == "final"]
    step, budget = episodes["step"], episodes["budget_frames"]
    keep = (episodes["mode"] == rule["mode"]) & (step <= budget)
    if name == "train_window":
        keep &= (step >= rule["start"]) & (step <= rule["end"])
    elif name == "last_fraction":
        keep &= step >= (1 - rule["fraction"]) * budget
    selected = episodes[keep]
    if name == "last_point":
        selected = selected.sort_values("step").groupby(RUN_KEYS, sort=False).tail(1)
    return selected


def _last_before_window(episodes: pd.DataFrame, rule: dict[str, Any], missing: pd.DataFrame) -> pd.DataFrame:
    """For runs without an episode in the window: their last episode ending before the window's end."""
    candidates = episodes.merge(missing, on=RUN_KEYS)
    candidates = candidates[(candidates["mode"] == rule["mode"]) & (candidates["step"] <= rule["end"])]
    return candidates.sort_values("step").groupby(RUN_KEYS, sort=False).tail(1)


def final_scores(data: Data, rule: dict[str, Any] | None = None, normaliser: str | None = None) -> pd.DataFrame:
    """One row per run: RUN_KEYS, raw (the rule's value), score (normalised), n_episodes, fallback, rule,
    normaliser, unscored (fallback: the window was empty and the last episode before it counts; unscored:
    why the episodes cannot give the normaliser's score, e.g. Crafter without achievement counts).

    `rule` and `normaliser` override each run's own (its config, or the suite default for published
    data). Published per-run final scores are final already: a curve rule leaves them as they are.
    Runs without an episode under the rule get NaN.
    """
    runs = data.runs.copy()
    runs["rule_key"] = [json.dumps(canonical_rule(rule or r), sort_keys=True) for r in runs["final_score"]]
    runs["normaliser"] = [normalize.canonical(normaliser or n) for n in runs["normaliser"]]
    has_curve = data.episodes["mode"] != "final"
    curve_runs = data.episodes.loc[has_curve, RUN_KEYS].drop_duplicates()
    curve_runs["has_curve"] = True
    runs = runs.merge(curve_runs, on=RUN_KEYS, how="left")
    final_only = runs["has_curve"].isna()
    runs.loc[final_only, "rule_key"] = json.dumps(canonical_rule("eval_after_training"), sort_keys=True)
    episodes = data.episodes.merge(runs[RUN_KEYS + ["budget_frames", "rule_key", "normaliser"]], on=RUN_KEYS)
    parts = []
    for (rule_key, name), group in episodes.groupby(["rule_key", "normaliser"], sort=False):
        rule_dict = json.loads(rule_key)
        selected = _select(group, rule_dict)
        fallback = pd.DataFrame(columns=RUN_KEYS)
        if rule_dict.get("empty") == "last":
            in_group = group[RUN_KEYS].drop_duplicates()
            missing = in_group.merge(selected[RUN_KEYS].drop_duplicates(), how="left", indicator=True)
            missing = missing.loc[missing["_merge"] == "left_only", RUN_KEYS]
            fallback = _last_before_window(group, rule_dict, missing)
            selected = pd.concat([selected, fallback])
        reduced = normalize.reduce_runs(name, selected, RUN_KEYS)
        reduced = reduced.merge(fallback[RUN_KEYS].assign(fallback=True), on=RUN_KEYS, how="left")
        reduced["score"] = normalize.normalise(name, reduced["task"], reduced["raw"])
        parts.append(reduced)
    empty = pd.DataFrame(columns=RUN_KEYS + ["raw", "score", "n_episodes", "fallback", "unscored"])
    scores = pd.concat(parts, ignore_index=True) if parts else empty
    result = runs[RUN_KEYS + ["rule_key", "normaliser"]].merge(scores, on=RUN_KEYS, how="left")
    result["n_episodes"] = pd.to_numeric(result["n_episodes"]).fillna(0).astype(int)
    result["fallback"] = result["fallback"].astype("boolean").fillna(False).astype(bool)
    result["unscored"] = result["unscored"].fillna("")
    result["rule"] = [describe(json.loads(k)) for k in result["rule_key"]]
    return result.drop(columns="rule_key")
