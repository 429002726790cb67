"""`harness.bench --against official`, for real on a tiny point: both drivers time updates and policy steps."""

import pytest

from harness import peers

pytestmark = pytest.mark.official
TINY = {"name": "dmc_1m", "task": "dmc_cartpole", "size": "1m", "batch": 2, "length": 8, "dtype": "float32",
        "warmup": 0, "warmup_policy": 1}


def test_ours_and_the_official_code_are_timed_in_turn(official_python, tmp_path):
    pythons = {"ours": peers.side_python("ours", install=False), "official": official_python}
    results = peers.run_point(TINY, pythons, rounds=2, per_round=1, policy_per_round=2, logs=tmp_path)
    for side in pythons:
        assert len(results[side].update_s) == 2 and len(results[side].policy_s) == 4
        assert all(t > 0 for t in results[side].update_s + results[side].policy_s)
        assert 0.1 < results[side].peak_rss_gb < 8
        assert results[side].info["dtype"] == "float32"
    assert "| DMC cartpole, vector, 1m |" in peers.format_tables({"dmc_1m": results}, list(pythons))
