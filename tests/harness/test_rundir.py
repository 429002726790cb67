"""Checkpoints and status files: a failure in the middle of a write leaves the previous state intact."""

import json

import pytest

from harness.rundir import RunDir


def save_files(content: str):
    def save(directory):
        (directory / "weights.txt").write_text(content)
    return save


def test_checkpoint_switch_is_atomic_and_keeps_only_the_latest(tmp_path):
    run = RunDir(tmp_path)
    run.save_checkpoint(100, {"agent_step": 100}, save_files("first"))
    second = run.save_checkpoint(200, {"agent_step": 200}, save_files("second"))
    assert run.latest_checkpoint() == second
    assert run.load_loop_state(second) == {"agent_step": 200}
    assert (second / "weights.txt").read_text() == "second"
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["000000000200", "latest"]


def test_crash_while_saving_keeps_the_previous_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    first = run.save_checkpoint(100, {"agent_step": 100}, save_files("first"))

    def crash(directory):
        (directory / "weights.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        run.save_checkpoint(200, {"agent_step": 200}, crash)
    assert run.latest_checkpoint() == first
    assert (first / "weights.txt").read_text() == "first"
    # the next successful save cleans the torn attempt away
    third = run.save_checkpoint(300, {"agent_step": 300}, save_files("third"))
    assert sorted(p.name for p in run.checkpoints.iterdir()) == [third.name, "latest"]


def test_truncate_logs_cuts_back_to_checkpointed_lengths(tmp_path):
    run = RunDir(tmp_path)
    run.scores.write_text('{"step": 1}\n')
    sizes = run.log_sizes()
    with open(run.scores, "a") as f:
        f.write('{"step": 2}\n')
    run.truncate_logs(sizes)
    assert run.scores.read_text() == '{"step": 1}\n'
    run.truncate_logs({})  # no checkpoint: a fresh start
    assert run.scores.read_text() == "" and not run.metrics.exists()


def test_status_updates_merge_and_reject_unknown_states(tmp_path):
    run = RunDir(tmp_path)
    run.update_status(state="running", step=10)
    status = run.update_status(step=20)
    assert status["state"] == "running" and status["step"] == 20
    assert json.loads(run.status.read_text())["step"] == 20
    with pytest.raises(ValueError, match="unknown run state 'exploded'"):
        run.update_status(state="exploded")
