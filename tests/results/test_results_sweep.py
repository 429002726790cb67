"""A sweep's variants in the report: their labels, --methods, the scaling plot and its numbers,
probability of improvement between variants."""

import pandas as pd
import pytest
import yaml

from results.report import main

CLASSIC = {"name": "classic", "tasks": ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"],
           "protocol": {"budget": 100000, "action_repeat": 1, "episode_cap": None, "eval_every": 10000,
                        "eval_episodes": 5, "final_eval_episodes": 20,
                        "final_score": {"rule": "eval_after_training"}, "normaliser": "raw"}}
BASE = {"CartPole-v1": 100.0, "Acrobot-v1": -300.0, "Pendulum-v1": -900.0}


def score(size: str, ratio: int, task: str, seed: int) -> float:
    """Final score of a run: better with a larger train ratio and the larger model; seed 1 is 2 above seed 0."""
    return BASE[task] + ratio / 8 + (50 if size == "12m" else 0) + 2 * seed


@pytest.fixture
def sweep(tmp_path, make_run):
    """Run directories of a grid agent.size=1m,12m agent.train_ratio=32,512 seeds=2 on classic, as the harness
    writes them (harness/sweep.py records the variant in config.yaml)."""
    root = tmp_path / "runs"
    for size in ("1m", "12m"):
        for ratio in (32, 512):
            name = f"size={size},train_ratio={ratio}"
            for task in BASE:
                for seed in (0, 1):
                    final = [{"step": 100000, "agent_step": 100000, "episode/score": score(size, ratio, task, seed),
                              "episode/length": 200, "mode": "eval", "final": True}] * 3
                    run = make_run(root / name, CLASSIC, "dreamerv3", task, seed, final)
                    config = yaml.safe_load((run / "config.yaml").read_text())
                    config["variant"] = {"name": name, "label": f"dreamerv3 [size={size}, train_ratio={ratio}]",
                                         "settings": {"agent.size": size, "agent.train_ratio": ratio}}
                    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def test_variants_are_methods_with_a_scaling_plot(sweep, tmp_path):
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--reps", "500", "--improvement", "variants"]) == 0
    per_task = pd.read_csv(out / "tables/classic_per_task.csv")
    labels = {f"dreamerv3 [size={s}, train_ratio={r}] (new)" for s in ("1m", "12m") for r in (32, 512)}
    assert set(per_task["method"]) == labels
    row = per_task[(per_task["method"] == "dreamerv3 [size=12m, train_ratio=512] (new)")
                   & (per_task["task"] == "CartPole-v1")].iloc[0]
    assert row["mean"] == pytest.approx(100 + 64 + 50 + 1) and row["runs"] == 2
    assert set(pd.read_csv(out / "tables/classic_aggregates.csv")["method"]) == labels

    points = pd.read_csv(out / "plots/classic_scaling_train_ratio.csv")
    assert set(points["line"]) == {"dreamerv3 [size=1m]", "dreamerv3 [size=12m]"}  # one line per other setting
    cartpole = points[(points["line"] == "dreamerv3 [size=1m]") & (points["panel"] == "CartPole-v1")]
    assert list(cartpole["agent.train_ratio"]) == [32, 512]
    assert list(cartpole["point"]) == pytest.approx([100 + 4 + 1, 100 + 64 + 1])
    assert (cartpole["lower"] <= cartpole["point"]).all() and (cartpole["point"] <= cartpole["upper"]).all()
    aggregate = points[points["panel"] == "aggregate (IQM)"]
    assert len(aggregate) == 4 and (aggregate["runs"] == 2).all()
    sizes = pd.read_csv(out / "plots/classic_scaling_size.csv")  # '1m' and '12m' are an axis too
    assert set(sizes["line"]) == {"dreamerv3 [train_ratio=32]", "dreamerv3 [train_ratio=512]"}
    pendulum = sizes[(sizes["line"] == "dreamerv3 [train_ratio=32]") & (sizes["panel"] == "Pendulum-v1")]
    assert list(pendulum["agent.size"]) == [1e6, 12e6] and list(pendulum["point"]) == pytest.approx([-895, -845])
    for name in ("scaling_train_ratio", "scaling_size", "improvement_variants", "curves"):
        assert (out / f"plots/classic_{name}.png").stat().st_size > 10_000, name
    report = (out / "report.md").read_text()
    assert "![classic_scaling_train_ratio](plots/classic_scaling_train_ratio.png)" in report


def test_methods_select_variants_by_label_or_by_agent(sweep, tmp_path):
    out = tmp_path / "one"
    assert main([str(sweep), "--out", str(out), "--reps", "200", "--no-plots",
                 "--methods", "dreamerv3 [size=1m, train_ratio=32]"]) == 0
    assert set(pd.read_csv(out / "tables/classic_per_task.csv")["method"]) == {"dreamerv3 [size=1m, train_ratio=32] (new)"}
    out = tmp_path / "all"
    assert main([str(sweep), "--out", str(out), "--reps", "200", "--no-plots", "--methods", "dreamerv3"]) == 0
    assert pd.read_csv(out / "tables/classic_per_task.csv")["method"].nunique() == 4
    with pytest.raises(ValueError, match=r"no runs of method\(s\) \['ppo'\]; loaded methods: dreamerv3 \[size=12m"):
        main([str(sweep), "--out", str(tmp_path / "x"), "--methods", "ppo"])
