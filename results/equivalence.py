"""Reproduction verdicts as equivalence tests, their margins, and the seeds a conclusive verdict needs.

A verdict compares ours with a reference (published runs, a paper table's mean, or runs of another agent)
on one task or on a suite's aggregate, with a margin δ (results/reference/margins.yaml):

- `reproduced (within ±δ)`: the 90% interval of (ours - reference) lies inside [-δ, +δ]. These are two
  one-sided tests at 5% (Schuirmann's TOST): a difference as large as δ is rejected in both directions.
  A difference the interval shows to be nonzero but inside the margin is still reproduced: δ is by
  declaration the largest difference that does not matter, and the interval in the table shows the shift.
- `above` / `below`: the whole 90% interval lies beyond +δ / -δ: one-sided test at 5% that the
  difference exceeds the margin in that direction.
- `inconclusive`: neither; printed with the seeds per side that would give a conclusive verdict with 80%
  power if the two agree (true difference 0), at the observed spread.

So noise can no longer pass for agreement: fewer seeds give wider intervals, which stay inconclusive.

Power of the test: the interval is d ± t(0.95, df) se; treating se as known and d as t-distributed
around the true difference Δ, P(reproduced) = T(δ/se - t - Δ/se) + T(δ/se - t + Δ/se) - 1 (the usual
shifted-t approximation of TOST power; tests/results/test_verdicts.py checks it by simulation).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml
from scipy import stats as scipy_stats

LEVEL = 0.90  # two one-sided tests at 5% each
POWER = 0.80  # what the seed counts promise
MAX_SEEDS = 500  # beyond this a margin counts as out of reach
MARGINS = Path(__file__).parent / "reference" / "margins.yaml"


@dataclass(frozen=True)
class Margin:
    task: float  # δ of per-task verdicts
    aggregate: float  # δ of the IQM and mean over tasks
    units: str
    reason: str


@cache
def _margins() -> dict:
    return yaml.safe_load(MARGINS.read_text())


def margin(suite: str, task: float | None = None, aggregate: float | None = None) -> Margin:
    """The suite's default margins, each replaced by `task` / `aggregate` when given (--margin)."""
    table = _margins()
    if suite not in table:
        raise ValueError(f"no equivalence margin for suite '{suite}'; suites with one: {', '.join(table)}")
    entry = table[suite]
    reason = entry["reason"]
    if task is not None or aggregate is not None:
        reason = "set on the command line (--margin / --aggregate-margin); the suite's default: " + reason
    return Margin(task=float(entry["task"] if task is None else task),
                  aggregate=float(entry["aggregate"] if aggregate is None else aggregate),
                  units=entry["units"], reason=reason)


def judge(lower: float, upper: float, delta: float) -> str:
    """'reproduced', 'above', 'below' or 'inconclusive' from the 90% interval of the difference."""
    if np.isnan(lower) or np.isnan(upper):
        return "n/a"
    if lower > delta:
        return "above"
    if upper < -delta:
        return "below"
    if -delta < lower and upper < delta:
        return "reproduced"
    return "inconclusive"


def _standard_error(sd_new: float, n: float, sd_ref: float, m: float | None) -> tuple[float, float]:
    """se of the difference of means and its Welch-Satterthwaite degrees of freedom; m None: the
    reference side is a constant (a paper table's mean)."""
    a = sd_new**2 / n
    b = 0.0 if m is None else sd_ref**2 / m
    if a + b == 0:
        return 0.0, np.inf
    df = (a + b) ** 2 / (a**2 / (n - 1) + (0.0 if m is None else b**2 / (m - 1)))
    return float(np.sqrt(a + b)), float(df)


def power(delta: float, sd_new: float, n: float, sd_ref: float = 0.0, m: float | None = None,
          difference: float = 0.0) -> float:
    """P(`reproduced`) with n runs of ours (sd_new) against m reference runs (sd_ref; m None: a constant)
    when the true difference is `difference`."""
    se, df = _standard_error(sd_new, n, sd_ref, m)
    if se == 0:
        return float(abs(difference) < delta)
    t = scipy_stats.t.ppf(0.5 + LEVEL / 2, df)
    cdf = scipy_stats.t.cdf
    return float(max(0.0, cdf((delta - difference) / se - t, df) + cdf((delta + difference) / se - t, df) - 1))


def seeds_needed(delta: float, sd_new: float, sd_ref: float = 0.0, reference_runs: int | None = None,
                 both_grow: bool = False) -> int | None:
    """The fewest runs of ours that give `reproduced` with POWER when the sides agree; None if no number up
    to MAX_SEEDS does (the fixed reference runs' own spread takes the whole margin).

    both_grow: the reference side gets as many runs (seeds per side, e.g. --against another agent of ours);
    else it keeps its `reference_runs` (None: a constant without spread)."""
    def enough(n: int) -> bool:
        m = n if both_grow else reference_runs
        return power(delta, sd_new, n, sd_ref, m) >= POWER
    if not enough(MAX_SEEDS):
        return None
    low, high = 2, MAX_SEEDS  # power grows with n: bisect for the first n that is enough
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle + 1, high)
    return low


def smallest_margin(sd_ref: float, reference_runs: int) -> float:
    """The margin below which no number of our runs gives `reproduced` with POWER against `reference_runs`
    fixed runs spread by sd_ref: with ours exact, se = sd_ref / sqrt(m) and the interval's t has m - 1
    degrees of freedom."""
    df = reference_runs - 1
    t = scipy_stats.t.ppf(0.5 + LEVEL / 2, df) + scipy_stats.t.ppf(0.5 + POWER / 2, df)
    return float(t * sd_ref / np.sqrt(reference_runs))


def seeds_text(seeds: int | None, both_grow: bool, smallest: float = np.nan) -> str:
    """What a table says of `seeds_needed`; `smallest`: the smallest margin the fixed reference runs allow."""
    if seeds is None:
        return (f"over {MAX_SEEDS} runs per side" if both_grow or np.isnan(smallest) else
                f"out of reach: the reference runs allow no margin below ±{smallest:.3g}")
    return f"~{seeds} runs per side" if both_grow else f"~{seeds} runs of ours"


def verdict_text(kind: str, delta: float, seeds: str = "") -> str:
    """The verdict as the tables print it, with the margin it was judged at."""
    shown = f"{delta:.3g}"
    if kind == "reproduced":
        return f"reproduced (within ±{shown})"
    if kind in ("above", "below"):
        return f"{kind} (beyond {'+' if kind == 'above' else '-'}{shown})"
    if kind == "inconclusive":
        return f"inconclusive ({seeds})" if seeds else "inconclusive"
    return f"n/a (fewer than 2 runs{'; ' + seeds + ' needed' if seeds else ''})"


def expanded_level(runs: int, level: float = LEVEL) -> float:
    """The percentile-bootstrap level whose interval is as wide as a t interval with `runs` runs.

    The percentile bootstrap of a mean is too narrow with few runs (it lacks n/(n-1) and uses the normal
    quantile where t's is 2-3 times larger; docs/reference/reports.md measures it). Hesterberg's expanded percentile
    interval (The American Statistician 69(4), 2015, section 6) takes the bootstrap percentiles at
    Φ(± sqrt(n/(n-1)) t(level, n-1)) instead."""
    if runs < 2:
        return level
    z = np.sqrt(runs / (runs - 1)) * scipy_stats.t.ppf(0.5 + level / 2, runs - 1)
    return float(1 - 2 * scipy_stats.norm.sf(z))
