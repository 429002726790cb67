"""Paper tables regenerated from the shipped per-run data, beside the numbers the papers printed."""

import pandas as pd
import pytest

from results.paper import main, regenerate, specs

REPS = 200


def rows(name: str) -> pd.DataFrame:
    return regenerate(name, REPS).rows.set_index(["method", "metric"])


def test_list_and_unknown_names(capsys):
    assert main([]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in specs()) and len(specs()) == 9
    with pytest.raises(ValueError, match="valid tables: dreamerv3_atari100k"):
        main(["dreamerv4"])


def test_dreamerv2_atari_table_1_from_its_own_55_games():
    table = rows("dreamerv2_atari")
    assert (table["tasks"] == 55).all()
    baselines = table.drop(index="DreamerV2", level="method")
    assert (baselines["difference"].abs() <= 0.02).all()  # Dopamine's numbers, printed to 2 decimals
    ours = table.loc["DreamerV2", "regenerated"]
    assert ours.to_numpy() == pytest.approx([2.142, 11.356, 0.434, 0.273], abs=1e-3)
    assert table.loc[("DreamerV2", "gamer median"), "printed"] == 2.15


def test_atari100k_methods_equal_the_printed_numbers():
    table = rows("atari100k_methods")
    assert table.loc[("IRIS", "human-normalised mean"), "regenerated"] == pytest.approx(1.046, abs=5e-4)
    assert table.loc[("IRIS", "human-normalised IQM"), "regenerated"] == pytest.approx(0.501, abs=5e-4)
    assert table.loc[("SPR", "human-normalised IQM"), "regenerated"] == pytest.approx(0.337, abs=5e-4)
    per_game = table.dropna(subset=["from printed per-game means"])
    assert len(per_game) == 12  # SPR, SimPLe, CURL, EfficientZero, MuZero and IRIS: mean and median
    assert per_game["regenerated"].to_numpy() == pytest.approx(per_game["from printed per-game means"], abs=2e-3)


def test_crafter_records_and_dreamerv3_tables(tmp_path):
    crafter = rows("crafter")
    assert crafter.loc[("Human experts", "Crafter score (%)"), "regenerated"] == pytest.approx(50.53, abs=0.01)
    assert crafter.loc[("Random", "Crafter score (%)"), "regenerated"] == pytest.approx(1.55, abs=0.01)
    assert (crafter["difference"].abs() < 0.05).all()
    atari100k = rows("dreamerv3_atari100k")
    assert atari100k.loc[("DreamerV3", "human-normalised mean"), "regenerated"] == pytest.approx(1.25, abs=0.01)
    assert atari100k.loc[("DreamerV3", "human-normalised mean"), "printed"] == 1.097
    assert main(["dreamerv3_crafter", "--out", str(tmp_path), "--reps", str(REPS)]) == 0
    text = (tmp_path / "dreamerv3_crafter.md").read_text()
    assert "no shipped per-run data of DreamerV3" in text and "| DreamerV3 | Crafter score (%) | – | 0 | 14.5 |" in text
    assert (tmp_path / "tables/dreamerv3_crafter.tex").read_text().startswith("\\begin{tabular}")
    assert len(pd.read_csv(tmp_path / "tables/dreamerv3_crafter.csv")) == 6


@pytest.mark.parametrize("name, method, metric, value, tasks", [
    ("dreamerv3_atari200m", "DreamerV3", "gamer-normalised median", 8.245, 57),
    ("dreamerv3_dmc_proprio", "DreamerV3", "mean return", 741, 18),
    ("dreamerv3_dmc_vision", "DreamerV3", "mean return", 782.5, 20),
    ("dreamerv1_dmc", "Dreamer", "mean return", 805, 20),
    ("dreamerv1_dmc", "D4PG (1e8 steps)", "mean return", 786, 18),  # D4PG lacks two tasks in baselines.json
])
def test_tables_without_a_printed_aggregate_still_regenerate(name, method, metric, value, tasks):
    row = rows(name).loc[(method, metric)]
    assert row["regenerated"] == pytest.approx(value, rel=2e-3) and row["tasks"] == tasks
    assert pd.isna(row["printed"]) and row["printed_from"] == "no printed number in the shipped sources"
