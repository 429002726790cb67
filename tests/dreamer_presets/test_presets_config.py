"""The presets compose for every suite with the paper settings of danijar/dreamerv3 @ 8fa35f8, danijar/dreamerv2
@ 07d906e and danijar/dreamer @ 56d4d44, and the
presets page's tables are the ones generated from the configs."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from agents.dreamer import config as dreamer_config
from agents.dreamer import presets_table
from agents.dreamer.agent import DreamerAgent
from harness.plan import compose
from preset_helpers import PRESETS, preset_config

SUITES = ("classic", "atari26", "atari57", "dmc_proprio", "dmc_vision", "crafter")


@pytest.mark.parametrize("preset", (*PRESETS, "dreamerv3"))
@pytest.mark.parametrize("suite", SUITES)
def test_every_preset_composes_and_validates_for_every_suite(preset, suite):
    cfg = preset_config(preset, suite)
    assert cfg["name"] == preset
    dreamer_config.validate(cfg)


def test_dreamerv2_settings_per_domain():
    atari, dmc, crafter = (preset_config("dreamerv2", s) for s in ("atari57", "dmc_vision", "crafter"))
    for cfg in (atari, dmc, crafter):
        assert (cfg["rssm"]["latent"], cfg["rssm"]["stoch"], cfg["rssm"]["classes"]) == ("categorical", 32, 32)
        assert (cfg["batch_size"], cfg["batch_length"]) == (16, 50)
        assert cfg["actor_grad"] == {"discrete": "reinforce", "continuous": "backprop"}
        assert (cfg["slow_every"], cfg["slow_rate"], cfg["critic_target"]) == (100, 1.0, "slow")
        assert cfg["free_avg"] and cfg["optimizer"]["kind"] == "adam_per_module"
        assert {g["clip"] for g in (cfg["optimizer"][k] for k in ("model", "actor", "critic"))} == {100.0}
        # KL balance 0.8
        assert cfg["loss_scales"]["dyn"] / (cfg["loss_scales"]["dyn"] + cfg["loss_scales"]["rep"]) == pytest.approx(0.8)
    scales = atari["loss_scales"]
    assert scales["dyn"] + scales["rep"] == pytest.approx(0.1) and scales["con"] == 5.0
    assert atari["reward_transform"] == crafter["reward_transform"] == "tanh" and dmc["reward_transform"] == "identity"
    assert (atari["rssm"]["deter"], dmc["rssm"]["deter"], crafter["rssm"]["deter"]) == (600, 200, 1024)
    assert (atari["free_nats"], dmc["free_nats"], crafter["free_nats"]) == (0.0, 1.0, 0.0)
    assert (atari["actent"], dmc["actent"], crafter["actent"]) == (1e-3, 1e-4, 3e-3)
    lrs = lambda c: tuple(c["optimizer"][k]["lr"] for k in ("model", "actor", "critic"))  # noqa: E731
    assert (lrs(atari), lrs(dmc), lrs(crafter)) == ((2e-4, 4e-5, 1e-4), (3e-4, 8e-5, 8e-5), (1e-4, 1e-4, 1e-4))
    assert atari["train_ratio"] == 16 * 50 / 16 and atari["train_after"] == 50000
    assert not dmc["cont_head"] and atari["cont_head"] and 1 - 1 / atari["horizon"] == pytest.approx(0.999)


def test_dreamerv1_settings_on_dmc():
    cfg = preset_config("dreamerv1", "dmc_vision")
    assert (cfg["rssm"]["latent"], cfg["rssm"]["stoch"], cfg["rssm"]["deter"]) == ("gaussian", 30, 200)
    assert (cfg["free_nats"], cfg["free_avg"], cfg["heads"]["scalar"], cfg["policy"]["dist"]) == (
        3.0, True, "mse", "tanh_normal")
    assert cfg["actor_grad"] == {"discrete": "backprop", "continuous": "backprop"}
    assert cfg["explore"] == {"random_prefill": True, "noise": 0.3}
    assert [cfg["optimizer"][k]["lr"] for k in ("model", "critic", "actor")] == [6e-4, 8e-5, 8e-5]
    assert {cfg["optimizer"][k]["clip"] for k in ("model", "critic", "actor")} == {100.0}
    assert (cfg["batch_size"], cfg["batch_length"]) == (50, 50)
    # 5000 env steps of prefill and 100 updates every 1000 env steps, at action repeat 2
    assert cfg["train_after"] == 2500 and cfg["train_ratio"] / (50 * 50) == pytest.approx(100 / 500)
    assert compose(["suite=dmc_vision", "agent=dreamerv1"]).suite.protocol.action_repeat == 2


def test_dreamerv3_2023_settings():
    cfg = preset_config("dreamerv3_2023", "atari26")
    assert (cfg["loss_scales"]["dyn"], cfg["loss_scales"]["rep"], cfg["free_nats"], cfg["free_avg"]) == (
        0.5, 0.1, 1.0, False)
    opt = cfg["optimizer"]
    assert [(opt[k]["lr"], opt[k]["eps"], opt[k]["clip"]) for k in ("model", "actor", "critic")] == [
        (1e-4, 1e-8, 1000.0), (3e-5, 1e-5, 100.0), (3e-5, 1e-5, 100.0)]
    assert cfg["actor_grad"] == {"discrete": "reinforce", "continuous": "backprop"}
    assert (cfg["rssm"]["deter"], cfg["units"], cfg["depth"], cfg["train_ratio"]) == (512, 512, 32, 1024)
    assert not cfg["contdisc"] and cfg["heads"]["scalar"] == "twohot_symlog"
    assert preset_config("dreamerv3_2023", "crafter")["rssm"]["deter"] == 4096


def test_dreamerv2_atari_suite_variant_has_the_v2_paper_env():
    variant, base = (compose([f"suite={s}", "agent=dreamerv2"]) for s in ("atari57_dreamerv2", "atari57"))
    env = OmegaConf.to_container(variant.suite.env)
    assert env == {"size": [64, 64], "gray": True, "sticky": 0.25, "noops": 30, "actions": "minimal", "resize": "area"}
    assert list(variant.suite.tasks) == [t for t in base.suite.tasks if t not in ("defender", "surround")]  # V2's 55
    assert variant.suite.protocol.budget == base.suite.protocol.budget
    assert variant.agent.train_after == 50000 and variant.agent.loss_scales.con == 5.0


def test_bad_switches_name_the_valid_choices():
    cfg = preset_config("dreamerv2")
    with pytest.raises(ValueError, match="actor_grad.continuous 'dynamics'; valid: reinforce, backprop"):
        DreamerAgent.validate_config({**cfg, "actor_grad": {"discrete": "reinforce", "continuous": "dynamics"}})
    with pytest.raises(ValueError, match="policy.dist 'beta'; valid: bounded_normal, trunc_normal, tanh_normal"):
        DreamerAgent.validate_config({**cfg, "policy": {**cfg["policy"], "dist": "beta"}})
    with pytest.raises(ValueError, match="free_avg 'yes'; valid: True, False"):
        DreamerAgent.validate_config({**cfg, "free_avg": "yes"})
    with pytest.raises(ValueError, match="lacks keys: free_avg, actor_grad.discrete$"):
        DreamerAgent.validate_config({**{k: v for k, v in cfg.items() if k != "free_avg"},
                                      "actor_grad": {"continuous": "backprop"}})
    with pytest.raises(ValueError, match="slow_every must be positive"):
        dreamer_config.validate({**cfg, "slow_every": 0})
    with pytest.raises(ValueError, match="agent.size null needs every width set; missing: rssm.hidden, units"):
        dreamer_config.validate({**cfg, "units": None, "rssm": {**cfg["rssm"], "hidden": None}})


def test_presets_page_holds_the_generated_tables():
    text = presets_table.PRESETS_MD.read_text()
    assert presets_table.preset_table() in text
    assert presets_table.suite_table() in text
