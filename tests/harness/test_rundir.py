"""Checkpoints and status files: a failure in the middle of a write leaves the previous state intact."""

import json
import os
import subprocess
import sys

import pytest

from harness.logs import REPO, Session
from harness.rundir import RunDir, RunLocked


def save_files(content: str):
    def save(directory):
        (directory / "weights.txt").write_text(content)
    return save


def test_checkpoint_switch_is_atomic_and_keeps_the_last_two(tmp_path):
    run = RunDir(tmp_path)
    run.save_checkpoint(100, {"agent_step": 100}, save_files("first"))
    run.save_checkpoint(200, {"agent_step": 200}, save_files("second"))
    third = run.save_checkpoint(300, {"agent_step": 300}, save_files("third"))
    assert run.latest_checkpoint() == third
    assert run.load_loop_state(third) == {"agent_step": 300}
    assert (third / "weights.txt").read_text() == "third"
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["000000000200", "000000000300", "latest"]
    manifest = json.loads((third / "manifest.json").read_text())["files"]
    assert manifest["weights.txt"]["size"] == 5 and set(manifest) == {"weights.txt", "loop.json"}


@pytest.mark.parametrize("damage", ["truncate", "delete", "flip a byte"])
def test_a_damaged_newest_checkpoint_is_reported_and_the_previous_one_used(tmp_path, damage):
    run = RunDir(tmp_path)
    first = run.save_checkpoint(100, {"agent_step": 100}, save_files("first"))
    second = run.save_checkpoint(200, {"agent_step": 200}, save_files("second"))
    weights = second / "weights.txt"
    if damage == "truncate":
        weights.write_text("sec")
    elif damage == "delete":
        weights.unlink()
    else:
        weights.write_text("secont")
    checkpoint, problems = run.find_checkpoint()
    assert checkpoint == first and run.load_loop_state(checkpoint) == {"agent_step": 100}
    expected = {"truncate": "weights.txt has 3 bytes, 6 written", "delete": "weights.txt missing",
                "flip a byte": "weights.txt does not match its checksum"}[damage]
    assert problems == [f"checkpoint 000000000200 is damaged ({expected})"]
    # the next checkpoint replaces the damaged one and keeps the sound one before it
    third = run.save_checkpoint(300, {"agent_step": 300}, save_files("third"))
    assert run.find_checkpoint() == (third, [])


def test_lock_admits_one_holder_and_names_it(tmp_path):
    run = RunDir(tmp_path)
    assert run.lock.holder_if_held() is None
    run.lock.acquire(slurm_job_id="42_3")
    try:
        holder = run.lock.holder_if_held()
        assert holder["pid"] == os.getpid() and holder["slurm_job_id"] == "42_3"
        with pytest.raises(RunLocked, match=f"in use by pid {os.getpid()} on .*SLURM job 42_3"):
            RunDir(tmp_path).lock.acquire(wait_s=0.6)
    finally:
        run.lock.release()
    assert run.lock.holder_if_held() is None


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from harness.rundir import RunLock; "
                               f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    assert RunDir(tmp_path).lock.holder_if_held()["pid"] == holder.pid
    holder.kill()
    holder.wait()
    run = RunDir(tmp_path)
    run.lock.acquire()
    assert run.lock.holder_if_held()["pid"] == os.getpid()
    run.lock.release()


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
    assert sorted(p.name for p in run.checkpoints.iterdir()) == [first.name, third.name, "latest"]


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


def test_each_session_records_the_commit_and_commit_date_of_its_code(tmp_path):
    """results.provenance places a run against the fixes of CHANGELOG.md from these, also without git."""
    head = subprocess.run(["git", "-C", str(REPO), "show", "-s", "--format=%H %cI", "HEAD"], capture_output=True,
                          text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    commit, date = head.stdout.split()
    run = RunDir(tmp_path)
    for start in (0, 100):  # a run and its resume
        Session(run, object(), start).close(start + 100)
    meta = run.read_meta()
    assert (meta["git_commit"], meta["git_commit_date"]) == (commit, date)
    assert [(s["git_commit"], s["git_commit_date"]) for s in meta["sessions"]] == [(commit, date)] * 2


@pytest.mark.parametrize("device, gpus", [("cpu", 0), ("gpu: NVIDIA H100", 1), ("gpu: NVIDIA H100 x4", 4)])
def test_gpu_seconds_count_every_gpu_the_agent_trains_on(tmp_path, device, gpus):
    """meta.json's device is the agent's `device` ("gpu: <name> x<N>": a train step on N GPUs, DreamerAgent);
    its GPU seconds are wall seconds times the GPUs."""
    class Agent:
        pass

    agent = Agent()
    agent.device = device
    run = RunDir(tmp_path)
    session = Session(run, agent, 0)
    session.close(100)
    meta = run.read_meta()
    assert meta["device"] == device if gpus else meta["device"].startswith("cpu: ")
    assert meta["compute"]["gpu_seconds"] == pytest.approx(gpus * meta["compute"]["wall_seconds"])
