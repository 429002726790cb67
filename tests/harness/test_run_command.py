"""The harness end to end through its command line, on the classic suite with the random agent."""

import json
import math
import os

import yaml

from harness.rundir import RunDir


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_writes_complete_run_directory(tmp_path, run_cli):
    result = run_cli("harness.run", "suite=classic", "task=CartPole-v1,Pendulum-v1", "seeds=2", "steps=3000",
                     "suite.protocol.eval_every=1000", "suite.protocol.eval_episodes=2", "workers=2",
                     "root=runs", cwd=tmp_path)
    assert "4 done, 0 failed" in result.stdout
    for task, repeat in (("CartPole-v1", 1), ("Pendulum-v1", 1)):
        for seed in (0, 1):
            run = RunDir(tmp_path / "runs" / "classic" / "random" / task / f"seed{seed}")
            config = yaml.safe_load(run.config.read_text())
            assert (config["task"], config["seed"], config["suite"]["name"]) == (task, seed, "classic")
            assert config["protocol_overrides"]["protocol.budget"] == {"paper": 100000, "run": 3000}
            assert config["protocol_overrides"]["protocol.eval_every"] == {"paper": 10000, "run": 1000}

            status = json.loads(run.status.read_text())
            assert status["state"] == "done" and status["agent_step"] == 3000 and status["step"] == 3000 * repeat
            assert status["budget"] == 3000 and status["error"] is None

            scores = read_jsonl(run.scores)
            train = [s for s in scores if s["mode"] == "train"]
            assert train and all(s["final"] is False for s in train)
            steps = [s["step"] for s in train]
            assert steps == sorted(steps) and len(set(steps)) == len(steps)
            # one env: consecutive training episodes tile the step axis exactly
            assert all(b["step"] - a["step"] == b["episode/length"] for a, b in zip(train, train[1:]))
            assert steps[-1] <= 3000
            periodic = [s for s in scores if s["mode"] == "eval" and not s["final"]]
            assert sorted({s["step"] for s in periodic}) == [1000, 2000]  # not at the budget: final eval does that
            assert len(periodic) == 4
            final = [s for s in scores if s["final"]]
            assert len(final) == 20 and {s["step"] for s in final} == {3000} and all(s["mode"] == "eval" for s in final)
            if task == "CartPole-v1":
                assert all(1 <= s["episode/score"] <= 500 for s in scores)
                assert all(s["episode/score"] == s["episode/length"] for s in scores)  # +1 per step

            metrics = read_jsonl(run.metrics)
            assert metrics[-1]["step"] == 3000 and metrics[-1]["fps/env"] > 0

            meta = json.loads(run.meta.read_text())
            assert "harness.run" in meta["command"] and "steps=3000" in meta["command"]
            assert meta["versions"]["gymnasium"] == "1.4.0" and meta["device"].startswith("cpu")
            assert meta["compute"]["wall_seconds"] > 0 and meta["compute"]["cpu_seconds"] > 0
            assert meta["compute"]["gpu_seconds"] == 0
            assert len(meta["sessions"]) == 1 and meta["sessions"][0]["end_step"] == 3000
            assert run.latest_checkpoint() is not None


def test_rerun_skips_finished_runs_and_force_restarts(tmp_path, run_cli):
    args = ("harness.run", "task=CartPole-v1", "steps=500", "suite.protocol.final_eval_episodes=1", "root=r")
    run_cli(*args, cwd=tmp_path)
    scores = (tmp_path / "r/classic/random/CartPole-v1/seed0/scores.jsonl").read_text()
    again = run_cli(*args, cwd=tmp_path)
    assert "1 finished runs skipped" in again.stdout
    assert (tmp_path / "r/classic/random/CartPole-v1/seed0/scores.jsonl").read_text() == scores
    forced = run_cli(*args, "force=true", cwd=tmp_path)
    assert "1 done" in forced.stdout
    meta = json.loads((tmp_path / "r/classic/random/CartPole-v1/seed0/meta.json").read_text())
    assert len(meta["sessions"]) == 1  # a fresh run, not a resume


def test_changed_config_is_refused_not_silently_ignored(tmp_path, run_cli):
    run_cli("harness.run", "task=CartPole-v1", "steps=500", "root=r", cwd=tmp_path)
    before = {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()}
    result = run_cli("harness.run", "task=CartPole-v1", "steps=800", "root=r", cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "was started with another config" in result.stderr and "suite.protocol.budget: 500 -> 800" in result.stderr
    assert "force=true" in result.stderr
    assert {p: p.read_bytes() for p in (tmp_path / "r").rglob("*") if p.is_file()} == before


def test_tensorboard_events_when_asked(tmp_path, run_cli):
    run_cli("harness.run", "task=CartPole-v1", "steps=300", "logger.tensorboard=true", "root=r", cwd=tmp_path)
    assert list((tmp_path / "r/classic/random/CartPole-v1/seed0/tensorboard").glob("events.out.tfevents.*"))


def test_failed_job_does_not_stop_the_others_and_status_says_why(tmp_path, run_cli):
    result = run_cli("harness.run", "suite.tasks=[CartPole-v1,NoSuchEnv-v0]", "steps=500", "workers=1", "root=r",
                     cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "FAILED classic/random/NoSuchEnv-v0/seed0" in result.stdout and "1 done, 1 failed" in result.stdout
    failed = json.loads((tmp_path / "r/classic/random/NoSuchEnv-v0/seed0/status.json").read_text())
    assert failed["state"] == "failed" and "NoSuchEnv" in failed["error"]
    assert "Traceback" in (tmp_path / "r/classic/random/NoSuchEnv-v0/seed0/worker.log").read_text()
    status = run_cli("harness.status", "r", cwd=tmp_path, check=False)
    assert status.returncode == 1
    assert "failed" in status.stdout and "NoSuchEnv" in status.stdout and "worker.log" in status.stdout
    assert "2 runs: 1 done, 1 failed" in status.stdout


def test_status_exit_code_zero_when_all_done(tmp_path, run_cli):
    run_cli("harness.run", "task=Acrobot-v1", "steps=600", "root=r", cwd=tmp_path)
    status = run_cli("harness.status", "r", cwd=tmp_path)
    assert "classic/random/Acrobot-v1/seed0" in status.stdout and "done" in status.stdout
    assert "600/600 (100%)" in status.stdout and "1 runs: 1 done" in status.stdout
    assert run_cli("harness.status", "missing", cwd=tmp_path, check=False).returncode == 2


def test_metrics_are_finite_numbers(tmp_path, run_cli):
    run_cli("harness.run", "task=Pendulum-v1", "steps=1000", "root=r", cwd=tmp_path)
    for line in read_jsonl(tmp_path / "r/classic/random/Pendulum-v1/seed0/metrics.jsonl"):
        assert all(math.isfinite(v) for v in line.values())


def test_a_run_held_by_another_process_is_left_alone_even_with_force(tmp_path, run_cli):
    args = ("suite=classic", "task=CartPole-v1", "steps=3000", "root=runs")
    run_cli("harness.run", *args, cwd=tmp_path)
    run = RunDir(tmp_path / "runs/classic/random/CartPole-v1/seed0")
    run.lock.acquire(slurm_job_id="77_0")  # as a live worker elsewhere would
    before = {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()}
    try:
        plan = run_cli("harness.run", *args, "force=true", "--plan", cwd=tmp_path)
        assert "running elsewhere" in plan.stdout and "1 running elsewhere" in plan.stdout
        result = run_cli("harness.run", *args, "force=true", cwd=tmp_path, check=False)
        assert result.returncode == 3
        assert f"running elsewhere (pid {os.getpid()} on " in result.stdout and "SLURM job 77_0" in result.stdout
        assert {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()} == before
        shown = run_cli("harness.status", "runs", cwd=tmp_path)
        assert f"pid {os.getpid()} on" in shown.stdout  # the holder column
    finally:
        run.lock.release()


def test_status_shows_a_stopping_run_and_a_dead_holder_as_stale(tmp_path, run_cli):
    run = RunDir(tmp_path / "runs/classic/random/CartPole-v1/seed0")
    run.write_config({"task": "CartPole-v1"})
    run.lock.acquire()
    try:
        run.update_status(state="running", stopping_since="2026-01-01T10:00:05+00:00", stop_reason="signal SIGTERM")
        shown = run_cli("harness.status", "runs", cwd=tmp_path)
        assert "stopping (signal SIGTERM, since 10:00:05 UTC)" in shown.stdout, shown.stdout
    finally:
        run.lock.release()  # as if the worker died without a word: running, but nobody holds the run
    shown = run_cli("harness.status", "runs", cwd=tmp_path)
    assert "stale" in shown.stdout and "1 runs: 1 stale" in shown.stdout, shown.stdout
