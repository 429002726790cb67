"""`python -m harness.gpucheck` on a machine without a GPU: the refusal, the part selection, the summary
files, the MFU arithmetic and the FLOP count it divides (real XLA on the CPU), and the official venv's
CUDA jax option it installs. The GPU parts themselves run only on a GPU node (docs/guides/gpu-check.md)."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

from agents.official import setup
from harness import gpucheck, peers


def test_without_a_gpu_it_refuses_in_one_line_and_exits_2(run_cli, tmp_path: Path):
    result = run_cli("harness.gpucheck", cwd=tmp_path, check=False, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == ("no GPU: jax sees only cpu; this command needs a CUDA GPU "
                                                      "and the gpu extra: pip install -e '.[all,gpu]'")
    assert not (tmp_path / "gpucheck").exists()  # refused before anything was run or written


def test_unknown_parts_are_refused_with_the_valid_ones(capsys):
    with pytest.raises(ValueError, match="subset of devices, equivalence, bench, dreamer, ppo; got 'devices,gpu'"):
        gpucheck.parse_parts("devices,gpu")
    with pytest.raises(SystemExit) as exit:
        gpucheck.main(["--parts", "bench,nope"])
    assert exit.value.code == 2
    assert "--parts takes a comma-separated subset of devices, equivalence, bench, dreamer, ppo" in capsys.readouterr().err


def test_parts_run_in_their_own_order_without_repeats():
    assert gpucheck.parse_parts("ppo, devices,ppo") == ["devices", "ppo"]


def report(parts: dict) -> dict:
    machine = {"date": "2027-01-05T10:00:00+00:00", "cpu": "AMD EPYC 9654", "cores": 16, "memory_gb": 125.8,
               "versions": {"python": "3.11.9", "jax": "0.10.2", "jaxlib": "0.10.2", "torch": "2.13.0"}}
    gpu = {"jax_backend": "gpu", "jax_devices": [{"kind": "NVIDIA H100 80GB HBM3", "memory_gb": 79.1}],
           "torch_cuda": True, "torch_device": "NVIDIA H100 80GB HBM3"}
    return {"passed": all(p["passed"] for p in parts.values()), "machine": machine, "gpu": gpu, "parts": parts}


def test_the_summaries_hold_every_part_with_pass_fail_or_not_run(tmp_path: Path):
    parts = {
        "devices": {"passed": True, "summary": "jax: NVIDIA H100 80GB HBM3", "seconds": 4.2,
                    "gpu_memory_peak_gb": None, "log": "gpucheck/devices.log"},
        "bench": {"passed": True, "summary": "dmc_1m ours 0.0100 s (MFU 10.0%)", "seconds": 611.0,
                  "gpu_memory_peak_gb": 12.34, "log": "gpucheck/bench.log", "table": "Update, s | a | b |"},
        "ppo": {"passed": False, "summary": "failed at agent step 0, no update logged", "seconds": 20.4,
                "gpu_memory_peak_gb": 0.6, "log": "gpucheck/ppo.log", "log_tail": "RuntimeError: CUDA error"},
    }
    json_path, md_path = gpucheck.write_summary(report(parts), tmp_path / "out")
    assert json.loads(json_path.read_text()) == report(parts)
    page = md_path.read_text()
    assert page.startswith("# GPU check: FAIL\n")
    assert "NVIDIA H100 80GB HBM3 (79 GB); torch sees NVIDIA H100 80GB HBM3; AMD EPYC 9654 x16, 126 GB" in page
    assert "| devices | pass | 4 | - | jax: NVIDIA H100 80GB HBM3 |" in page
    assert "| equivalence | not run | - | - | - |" in page
    assert "| bench | pass | 611 | 12.3 | dmc_1m ours 0.0100 s (MFU 10.0%) |" in page
    assert "| dreamer | not run | - | - | - |" in page
    assert "| ppo | FAIL | 20 | 0.6 | failed at agent step 0, no update logged |" in page
    assert "Update, s / a / b /" not in page and "```text\nUpdate, s | a | b |\n```" in page  # the bench's table
    assert "Last lines of gpucheck/ppo.log:" in page and "RuntimeError: CUDA error" in page


def test_mfu_is_the_flop_rate_over_the_devices_dense_bf16_peak():
    assert peers.mfu(989e12, 4.0, "NVIDIA H100 80GB HBM3") == pytest.approx(0.25)
    assert peers.mfu(756e12, 2.0, "NVIDIA H100 PCIe") == pytest.approx(0.5)  # not the SXM's peak
    assert peers.mfu(31.2e12, 1.0, "NVIDIA A100-SXM4-80GB") == pytest.approx(0.1)
    assert peers.mfu(989e12, 10.0, "NVIDIA H200") == pytest.approx(0.1)
    assert peers.mfu(1e12, 1.0, "Tesla T4") is None  # no known peak: no MFU
    assert peers.mfu(None, 1.0, "NVIDIA H200") is None


def bench_json(device: str) -> dict:
    info = {"flops": 989e12 * 0.1 * 0.01, "device": device, "platform": "gpu"}
    return {"results": {"dmc_1m": {"ours": {"update_s": [0.01] * 10, "info": info},
                                   "official": {"update_s": [0.02] * 10, "info": {"platform": "gpu"}}}},
            "table": "the bench's table"}


@pytest.mark.parametrize("device, expected", [
    ("NVIDIA H100 80GB HBM3", "dmc_1m ours 0.0100 s (MFU 10.0%), official 0.0200 s (MFU 5.0%)"),
    ("NVIDIA RTX 6000 Ada Generation", "dmc_1m ours 0.0100 s, official 0.0200 s; MFU not reported: no FLOP count or "
                                       "no known peak bf16 FLOP/s for NVIDIA RTX 6000 Ada Generation"),
])
def test_the_bench_part_reads_update_times_and_mfu_from_the_bench(tmp_path: Path, monkeypatch, device, expected):
    def bench(command: list[str], log: Path, limit_s: float | None = None) -> int:
        Path(command[command.index("--out") + 1]).write_text(json.dumps(bench_json(device)))
        return 0

    monkeypatch.setattr(gpucheck, "official_side", lambda args: "")
    monkeypatch.setattr(gpucheck, "run_logged", bench)
    args = gpucheck.argparse.Namespace(out=tmp_path, points="dmc_1m", no_install=True)
    result = gpucheck.part_bench(args, tmp_path / "bench.log")
    assert result["passed"] and result["summary"].startswith(expected)
    assert result["table"] == "the bench's table"


def test_the_flop_count_of_a_train_step_is_positive_and_grows_with_the_batch():
    from harness.bench_peers.ours import Ours, _flops

    side = Ours({"task": "dmc_cartpole", "size": "1m", "batch": 2, "length": 8, "dtype": "float32"})
    doubled = jax.tree.map(lambda x: jnp.concatenate([x, x]), side.batch)
    assert side.flops > 0
    assert 1.7 * side.flops < _flops(side.agent, doubled) < 2.3 * side.flops  # nearly all of it is per sequence


def requires_txt(tmp_path: Path) -> Path:
    folder = tmp_path / "dreamer-3.3.1"
    (folder / "dreamer.egg-info").mkdir(parents=True)
    (folder / "dreamer.egg-info" / "requires.txt").write_text("chex\nipdb\njax[cuda12]==0.4.33\n"
                                                             "nvidia-cuda-nvcc-cu12<=12.2\noptax\n")
    return folder


def test_the_official_venv_takes_the_cpu_jax_or_with_cuda_its_own_pin(tmp_path: Path):
    folder = requires_txt(tmp_path)
    assert setup.requirements(folder) == ["chex", "jax[cpu]==0.4.33", "optax"]
    assert setup.requirements(folder, cuda=True) == ["chex", "jax[cuda12]==0.4.33", "nvidia-cuda-nvcc-cu12<=12.2",
                                                     "optax"]


def test_a_venv_set_up_with_cuda_keeps_it_when_the_setup_runs_again(tmp_path: Path, monkeypatch):
    asked = []
    monkeypatch.setattr(setup, "download", lambda cache: cache / setup.SDIST)
    monkeypatch.setattr(setup, "extract", lambda sdist, cache: cache)
    monkeypatch.setattr(setup, "make_venv", lambda folder, venv, cuda: asked.append(cuda))
    venv = tmp_path / "venv"
    venv.mkdir()
    setup.setup(tmp_path, venv)  # a new venv: the CPU jax
    (venv / setup.STAMP).write_text("chex\njax[cuda12]==0.4.33\n")
    setup.setup(tmp_path, venv)  # as the tests and the bench call it, after `setup --cuda`
    setup.setup(tmp_path, venv, cuda=True)
    assert asked == [False, True, True]
