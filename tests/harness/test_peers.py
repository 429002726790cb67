"""The cheap parts of `python -m harness.bench --against ...`: arguments, the alternation, the table, and
the errors for a missing peer venv or a failing driver. Real timings: tests/peers (marker `peers`) and
tests/official/test_bench_official.py (marker `official`)."""

from pathlib import Path

import pytest

from harness import bench, peers
from harness.peers import PeerError, SideResult


def test_against_takes_any_subset_in_table_order():
    assert peers.parse_against("sheeprl,official") == ["official", "sheeprl"]
    assert peers.parse_against(" sheeprl ") == ["sheeprl"]


@pytest.mark.parametrize("text", ["", "danijar", "official,ours"])
def test_an_unknown_peer_names_the_valid_ones(text):
    with pytest.raises(PeerError, match="subset of official, sheeprl"):
        peers.parse_against(text)


def test_an_unknown_point_names_the_valid_ones():
    with pytest.raises(PeerError, match="dmc_1m, dmc_12m, crafter_1m, crafter_12m"):
        peers.parse_points("atari_1m")


def test_the_sides_alternate_round_by_round():
    assert peers.schedule(["ours", "official", "sheeprl"], 2) == [
        "ours", "official", "sheeprl", "ours", "official", "sheeprl"]


def test_the_table_gives_medians_percentiles_and_the_best_peers_ratio():
    results = {
        "dmc_1m": {"ours": SideResult([0.5] * 9 + [0.9], [1e-3] * 5, 1.18),
                   "official": SideResult([0.75] * 10, [3e-3] * 5, 1.06),
                   "sheeprl": SideResult([0.85] * 10, [1.4e-3] * 5, 1.06)},
        "crafter_1m": {"ours": SideResult([3.5] * 10, [2e-3] * 5, 2.57),
                       "official": SideResult([5.6] * 10, [4e-3] * 5, 1.86),
                       "sheeprl": SideResult([3.3] * 10, [2.7e-3] * 5, 2.70)},
    }
    table = peers.format_tables(results, ["ours", "official", "sheeprl"])
    assert "| point | ours | official | sheeprl | best peer / ours |" in table
    assert "| DMC cartpole, vector, 1m | 0.500 (0.500-0.540) | 0.750 (0.750-0.750) | 0.850 (0.850-0.850) | 1.50x |" in table
    assert "| Crafter 64x64, 1m | 3.500 (3.500-3.500) | 5.600 (5.600-5.600) | 3.300 (3.300-3.300) | 0.94x (sheeprl is faster) |" in table
    assert "| DMC cartpole, vector, 1m | 1.00 (1.00-1.00) | 3.00 (3.00-3.00) | 1.40 (1.40-1.40) |" in table  # policy, ms
    assert "| Crafter 64x64, 1m | 2.57 | 1.86 | 2.70 |" in table  # peak RSS
    assert "MFU" not in table and "GFLOP/s" in table  # CPU: no device peak to divide by; no FLOP count given


def test_on_a_gpu_the_table_adds_mfu_from_our_flop_count():
    info = {"platform": "gpu", "device": "NVIDIA H100 80GB HBM3", "flops": 989e12 * 0.1}
    results = {"dmc_1m": {"ours": SideResult([1.0], [1e-3], 1.0, info), "official": SideResult([2.0], [1e-3], 1.0)}}
    table = peers.format_tables(results, ["ours", "official"])
    assert "| DMC cartpole, vector, 1m | 10.0% | 5.0% | 98900.0 |" in table


def test_on_a_cpu_the_table_gives_gflops_from_our_flop_count():
    info = {"platform": "cpu", "device": "cpu", "flops": 17.2e9}
    results = {"dmc_1m": {"ours": SideResult([1.0], [1e-3], 1.0, info), "sheeprl": SideResult([2.0], [1e-3], 1.0)}}
    table = peers.format_tables(results, ["ours", "sheeprl"])
    assert "| DMC cartpole, vector, 1m | 17.2 | 8.6 | 17.2 |" in table


def test_a_missing_sheeprl_venv_says_what_to_run(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(peers, "SHEEPRL_VENV", tmp_path / "venv")
    with pytest.raises(PeerError, match=r"run `python -m harness.peers setup sheeprl`"):
        peers.side_python("sheeprl", install=False)


def test_a_missing_official_venv_says_what_to_run(monkeypatch):
    def missing():
        raise peers.official_setup.OfficialSetupError("run `python -m agents.official.setup` first")
    monkeypatch.setattr(peers.official_setup, "official_python", missing)
    with pytest.raises(PeerError, match=r"official: .*python -m agents.official.setup"):
        peers.side_python("official", install=False)


def test_the_bench_reports_a_missing_venv_as_an_error_before_timing(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setattr(peers, "SHEEPRL_VENV", tmp_path / "venv")
    code = bench.main(["--against", "sheeprl", "--no-install", "--out", str(tmp_path / "out.json")])
    assert code == 2
    assert "harness.peers setup sheeprl" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_a_driver_that_dies_is_an_error_with_its_log(tmp_path: Path):
    with pytest.raises(PeerError, match=r"(?s)the nosuch driver exited \(code 1\).*No module named"):
        peers.Driver("nosuch", Path(peers.sys.executable), {}, tmp_path / "log")


@pytest.mark.parametrize("args", [["--rounds", "0"], ["--warmup", "-1"], ["--against", "sheeprl", "--per-round", "0"]])
def test_bad_counts_are_refused(args):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(args)
    assert exit_info.value.code == 2
