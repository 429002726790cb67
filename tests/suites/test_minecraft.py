"""Minecraft Diamond rules on MineRL-shaped observations (MineRL itself cannot be installed here)."""

import importlib.util

import numpy as np
import pytest

from suites.base import MissingDependency
from suites.minecraft import ACTIONS, MILESTONES, NOOP, DiamondRules, MinecraftEnv

ITEMS = ["air", "cobblestone", "crafting_table", "diamond", "dirt", "furnace", "iron_ingot", "iron_ore",
         "iron_pickaxe", "log", "log2", "planks", "stick", "stone_pickaxe", "wooden_pickaxe"]
EQUIP = ["air", "iron_pickaxe", "other", "stone_pickaxe", "wooden_pickaxe"]


def raw_obs(life=20.0, food=20.0, air=300.0, mainhand="air", **inventory):
    """An observation as MineRL 0.4.4 returns it for the diamond env spec."""
    return {
        "pov": np.full((64, 64, 3), 7, np.uint8),
        "inventory": {item: np.array(inventory.get(item, 0)) for item in ITEMS},
        "equipped_items": {"mainhand": {"type": mainhand, "damage": np.array(0), "maxDamage": np.array(0)}},
        "life_stats": {"life": np.array(life), "food": np.array(food), "air": np.array(air)},
        "location_stats": {"xpos": np.array(0.0), "ypos": np.array(64.0), "zpos": np.array(0.0)},
    }


def names(rules, indices):
    return [rules.action(list(ACTIONS).index(name)) for name in indices]


def test_action_table_has_the_25_paper_actions():
    assert len(ACTIONS) == 25
    assert list(ACTIONS)[:12] == ["noop", "attack", "turn_up", "turn_down", "turn_left", "turn_right", "forward",
                                  "back", "left", "right", "jump", "place_dirt"]
    rules = DiamondRules(ITEMS, EQUIP)
    assert rules.action(0) == NOOP
    jump, smelt = names(rules, ["jump", "smelt_iron_ingot"])
    assert jump == {**NOOP, "jump": 1, "forward": 1}
    assert smelt["nearbySmelt"] == "iron_ingot" and smelt["jump"] == 1  # the jump still sticks
    assert names(DiamondRules(ITEMS, EQUIP), ["turn_left"])[0]["camera"] == (0, -15)
    assert names(DiamondRules(ITEMS, EQUIP), ["craft_wooden_pickaxe"])[0]["nearbyCraft"] == "wooden_pickaxe"


def test_jump_sticks_for_10_steps():
    rules = DiamondRules(ITEMS, EQUIP)
    actions = names(rules, ["jump"] + ["noop"] * 11)
    assert [a["jump"] for a in actions] == [1] * 10 + [0] * 2
    assert [a["forward"] for a in actions] == [1] * 10 + [0] * 2


def test_attack_sticks_only_at_break_speed_1():
    fast = names(DiamondRules(ITEMS, EQUIP, break_speed=100.0), ["attack", "noop"])
    assert [a["attack"] for a in fast] == [1, 0]
    slow = names(DiamondRules(ITEMS, EQUIP, break_speed=1.0), ["attack"] + ["jump"] * 30)
    assert [a["attack"] for a in slow] == [1] * 30 + [0]
    assert [a["jump"] for a in slow[1:30]] == [0] * 29  # held attack suppresses jumping


def test_pitch_stays_within_60_degrees():
    rules = DiamondRules(ITEMS, EQUIP)
    pitches = [a["camera"][0] for a in names(rules, ["turn_up"] * 5 + ["turn_down"] * 9)]
    assert pitches == [-15] * 4 + [0] + [15] * 8 + [0]


def test_reward_pays_each_milestone_once_plus_health_change():
    rules = DiamondRules(ITEMS, EQUIP)
    sequence = [
        (raw_obs(dirt=3), 0.0),                             # first step of an episode pays nothing
        (raw_obs(dirt=3, log2=1), 1.0),                     # log2 counts as log
        (raw_obs(log=2), 0.0),                              # more logs: already paid
        (raw_obs(log=0, planks=4), 1.0),                    # planks
        (raw_obs(log=1, planks=4, life=18.0), 0.01 * (18 / 20 - 1)),  # a second log pays nothing
        (raw_obs(planks=4, life=20.0, diamond=1, iron_pickaxe=1), 2.0 + 0.01 * (20 / 20 - 18 / 20)),
    ]
    for raw, reward in sequence:
        assert rules.observe(raw)[1] == pytest.approx(reward)
    flags = rules.extras()
    assert len(flags) == len(MILESTONES) == 12
    assert {k for k, v in flags.items() if v} == {
        "log/milestone_log", "log/milestone_planks", "log/milestone_diamond", "log/milestone_iron_pickaxe"}


def test_items_held_at_spawn_never_pay_and_reset_starts_over():
    rules = DiamondRules(ITEMS, EQUIP)
    rules.observe(raw_obs(log=1))
    assert rules.observe(raw_obs(log=1, stick=1))[1] == 1.0
    assert rules.extras()["log/milestone_log"] == 1  # held, though it paid nothing
    rules.reset()
    assert rules.observe(raw_obs())[1] == 0.0
    assert rules.observe(raw_obs(stick=1))[1] == 1.0
    assert sum(rules.extras().values()) == 1


def test_observation_mapping():
    rules = DiamondRules(ITEMS, EQUIP)
    space = rules.observation_space((64, 64))
    rules.observe(raw_obs(log=3, cobblestone=5))
    obs, _ = rules.observe(raw_obs(log=1, log2=1, life=10.0, food=5.0, air=150.0, mainhand="wooden_pickaxe"))
    assert obs in space
    assert "log2" not in rules.items and len(obs["inventory"]) == len(ITEMS) - 1
    inventory = dict(zip(rules.items, obs["inventory"]))
    maximum = dict(zip(rules.items, obs["inventory_max"]))
    assert inventory["log"] == 2 and inventory["cobblestone"] == 0
    assert maximum["log"] == 3 and maximum["cobblestone"] == 5
    assert obs["equipped"].tolist() == [0, 0, 0, 0, 1]
    assert obs["health"][0] == 0.5 and obs["hunger"][0] == 0.25 and obs["breath"][0] == 0.5
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8


@pytest.mark.skipif(importlib.util.find_spec("minerl") is not None, reason="tests the machine without MineRL")
def test_without_minerl_the_error_names_java_8_and_the_extra(load_suite):
    with pytest.raises(MissingDependency, match=r"pip install -e '\.\[minecraft\]'"):
        load_suite("minecraft").make_env("minecraft_diamond", seed=0, mode="train")
    with pytest.raises(MissingDependency, match="Java 8.*'minecraft' extra"):
        MinecraftEnv(seed=0)
