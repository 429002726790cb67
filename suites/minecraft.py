"""Minecraft Diamond of the DreamerV3 paper through MineRL 0.4.4 (the 2024 code's Minecraft env,
danijar/dreamerv3 @ e3f0224).

25 discrete actions; reward +1 the first time in an episode each of 12 milestone items is in the
inventory, plus 0.01 x the change of health (life / 20); episodes end on death (`terminated`) or after
`episode_cap` steps (`truncated`). Observations: `image` 64x64 RGB, `inventory` and `inventory_max`
(counts per item, `log2` added into `log`), `equipped` (one-hot main-hand item), `health`, `hunger`,
`breath` (life / 20, food / 20, air / 300). The last step of an episode carries `log/milestone_<item>`
(1 when the episode obtained the item). Jumps stick for 10 steps; attacks stick for 30 steps only when
the break speed is 1 (the paper's is 100); the camera pitch stays within +-60 degrees.

`DiamondRules` holds everything but the game, so it is tested on MineRL-shaped observations; MineRL
itself needs Java 8 and a Gradle build that downloads Minecraft, which this project's test machine
cannot do, so `MinecraftEnv` has not been run end to end here.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from suites.base import EXTRA_INFO_PREFIX, Suite
from suites.wrappers import env_seed, image_space

NOOP: dict[str, Any] = dict(
    camera=(0, 0), forward=0, back=0, left=0, right=0, attack=0, sprint=0, jump=0, sneak=0,
    craft="none", nearbyCraft="none", nearbySmelt="none", place="none", equip="none")

ACTIONS: dict[str, dict[str, Any]] = {
    "noop": {},
    "attack": dict(attack=1),
    "turn_up": dict(camera=(-15, 0)),
    "turn_down": dict(camera=(15, 0)),
    "turn_left": dict(camera=(0, -15)),
    "turn_right": dict(camera=(0, 15)),
    "forward": dict(forward=1),
    "back": dict(back=1),
    "left": dict(left=1),
    "right": dict(right=1),
    "jump": dict(jump=1, forward=1),
    "place_dirt": dict(place="dirt"),
    "craft_planks": dict(craft="planks"),
    "craft_stick": dict(craft="stick"),
    "craft_crafting_table": dict(craft="crafting_table"),
    "place_crafting_table": dict(place="crafting_table"),
    "craft_wooden_pickaxe": dict(nearbyCraft="wooden_pickaxe"),
    "craft_stone_pickaxe": dict(nearbyCraft="stone_pickaxe"),
    "craft_iron_pickaxe": dict(nearbyCraft="iron_pickaxe"),
    "equip_stone_pickaxe": dict(equip="stone_pickaxe"),
    "equip_wooden_pickaxe": dict(equip="wooden_pickaxe"),
    "equip_iron_pickaxe": dict(equip="iron_pickaxe"),
    "craft_furnace": dict(nearbyCraft="furnace"),
    "place_furnace": dict(place="furnace"),
    "smelt_iron_ingot": dict(nearbySmelt="iron_ingot"),
}

MILESTONES = ("log", "planks", "stick", "crafting_table", "wooden_pickaxe", "cobblestone",
              "stone_pickaxe", "iron_ore", "furnace", "iron_ingot", "iron_pickaxe", "diamond")
HEALTH_SCALE = 0.01

INSTALL = ("the minecraft suite needs MineRL 0.4.4, which builds Minecraft with Gradle on install and "
           "runs it with Java 8: install a JDK 8 (JAVA_HOME pointing at it) and xvfb, then the "
           "'minecraft' extra, e.g. pip install -e '.[minecraft]' (the build downloads from the internet)")


def make_env(suite: Suite, task: str, seed: int, mode: str) -> gym.Env:
    return MinecraftEnv(seed=env_seed(seed, mode), episode_cap=suite.protocol.episode_cap, **suite.env)


class DiamondRules:
    """Actions, observations and reward of the diamond task, given MineRL's item lists."""

    def __init__(self, items: list[str], equip_values: list[str], break_speed: float = 100.0,
                 sticky_attack: int = 30, sticky_jump: int = 10, pitch_limit: float = 60.0) -> None:
        self.items = [item for item in items if item != "log2"]  # log2 is counted as log
        self.equip_values = list(equip_values)
        self._sticky_attack = sticky_attack if break_speed == 1.0 else 0
        self._sticky_jump = sticky_jump
        self._pitch_limit = pitch_limit
        self.reset()

    def reset(self) -> None:
        self._attack_left = self._jump_left = 0
        self._pitch = 0.0
        self._inventory_max: np.ndarray | None = None
        self._best: dict[str, float] = {}  # milestone -> most held this episode
        self._health: float | None = None

    def action(self, index: int) -> dict[str, Any]:
        """The MineRL action of discrete action `index`, after sticky keys and the pitch limit."""
        action = {**NOOP, **list(ACTIONS.values())[index]}
        if self._sticky_attack:
            if action["attack"]:
                self._attack_left = self._sticky_attack
            if self._attack_left > 0:
                action["attack"], action["jump"] = 1, 0
                self._attack_left -= 1
        if self._sticky_jump:
            if action["jump"]:
                self._jump_left = self._sticky_jump
            if self._jump_left > 0:
                action["jump"], action["forward"] = 1, 1
                self._jump_left -= 1
        pitch, yaw = action["camera"]
        if pitch and abs(self._pitch + pitch) > self._pitch_limit:
            action["camera"] = (0, yaw)
        self._pitch += action["camera"][0]
        return action

    def observe(self, raw: dict[str, Any]) -> tuple[dict[str, np.ndarray], float]:
        """The observation and reward of a MineRL observation (the first one of an episode pays 0)."""
        held = {item: float(raw["inventory"][item]) for item in self.items}
        held["log"] += float(raw["inventory"].get("log2", 0))
        inventory = np.array([held[item] for item in self.items], np.float32)
        first = self._inventory_max is None
        self._inventory_max = inventory if first else np.maximum(self._inventory_max, inventory)
        equipped = np.zeros(len(self.equip_values), np.float32)
        equipped[self.equip_values.index(raw["equipped_items"]["mainhand"]["type"])] = 1.0
        life = raw["life_stats"]
        health = float(life["life"]) / 20
        obs = {
            "image": np.asarray(raw["pov"], np.uint8),
            "inventory": inventory,
            "inventory_max": self._inventory_max.copy(),
            "equipped": equipped,
            "health": np.array([health], np.float32),
            "hunger": np.array([float(life["food"]) / 20], np.float32),
            "breath": np.array([float(life["air"]) / 300], np.float32),
        }
        reward = 0.0
        for item in MILESTONES:
            if not first and self._best[item] == 0 and held[item] > 0:
                reward += 1.0  # items held at spawn never pay: their best is already above 0
            self._best[item] = max(self._best.get(item, 0.0), held[item])
        if not first:
            reward += HEALTH_SCALE * (health - self._health)
        self._health = health
        return obs, reward

    def extras(self) -> dict[str, int]:
        """Milestone flags of the episode so far, as `log/milestone_<item>`."""
        return {f"{EXTRA_INFO_PREFIX}milestone_{item}": int(self._best.get(item, 0) > 0) for item in MILESTONES}

    def observation_space(self, size: tuple[int, int]) -> gym.spaces.Dict:
        def vector(n: int, high: float = np.inf) -> gym.spaces.Box:
            return gym.spaces.Box(0.0, high, (n,), np.float32)

        return gym.spaces.Dict({
            "image": image_space(size[0], size[1], 3),
            "inventory": vector(len(self.items)),
            "inventory_max": vector(len(self.items)),
            "equipped": vector(len(self.equip_values), 1.0),
            "health": vector(1, 1.0),
            "hunger": vector(1, 1.0),
            "breath": vector(1, 1.0),
        })


class MinecraftEnv(gym.Env):
    """The diamond task in a MineRL 0.4.4 world (old gym API inside, gymnasium outside)."""

    def __init__(self, seed: int, episode_cap: int | None = 36_000, size: tuple[int, int] = (64, 64),
                 break_speed: float = 100.0, sticky_attack: int = 30, sticky_jump: int = 10,
                 pitch_limit: float = 60.0) -> None:
        size = (int(size[0]), int(size[1]))
        self._env = minerl_env(size, break_speed)
        self._env.seed(seed)
        spaces = self._env.observation_space
        self._rules = DiamondRules(
            list(spaces["inventory"].spaces), list(spaces["equipped_items"]["mainhand"]["type"].values),
            break_speed, sticky_attack, sticky_jump, pitch_limit)
        self._cap = episode_cap
        self._steps = 0
        self.observation_space = self._rules.observation_space(size)
        self.action_space = gym.spaces.Discrete(len(ACTIONS))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if seed is not None:
            self._env.seed(seed)
        self._rules.reset()
        self._steps = 0
        obs, _ = self._rules.observe(self._env.reset())
        return obs, {}

    def step(self, action: int) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        raw, _, died, info = self._env.step(self._rules.action(int(action)))
        obs, reward = self._rules.observe(raw)
        self._steps += 1
        # MineRL reports a crashed Minecraft as an error: end the episode there as a truncation.
        truncated = not died and ("error" in info or (self._cap is not None and self._steps >= self._cap))
        return obs, reward, bool(died), truncated, self._rules.extras() if died or truncated else {}

    def close(self) -> None:
        self._env.close()


def minerl_env(size: tuple[int, int], break_speed: float) -> Any:
    """The MineRL env of the DreamerV3 diamond task: a default world, all items observed."""
    try:
        # MineRL 0.4.4 still uses the numpy aliases that numpy 1.24 removed.
        np.float, np.int, np.bool = float, int, bool  # type: ignore[attr-defined]
        from minerl.herobraine.env_spec import EnvSpec
        from minerl.herobraine.hero import handler, handlers, mc
        from minerl.herobraine.hero.mc import INVERSE_KEYMAP
    except ImportError as error:
        from suites.base import MissingDependency

        raise MissingDependency(f"{INSTALL} ({error})") from error

    class BreakSpeed(handler.Handler):
        def to_string(self) -> str:
            return f"break_speed({break_speed})"

        def xml_template(self) -> str:
            return f"<BreakSpeedMultiplier>{break_speed}</BreakSpeedMultiplier>"

    class Diamond(EnvSpec):
        def __init__(self) -> None:
            super().__init__(name="MineRLDreamerDiamond-v0")

        def create_agent_start(self) -> list:
            return [BreakSpeed()]

        def create_observables(self) -> list:
            return [handlers.POVObservation(size), handlers.FlatInventoryObservation(mc.ALL_ITEMS),
                    handlers.EquippedItemObservation(mc.ALL_ITEMS, _default="air", _other="other"),
                    handlers.ObservationFromCurrentLocation(), handlers.ObservationFromLifeStats()]

        def create_actionables(self) -> list:
            keys = [handlers.KeybasedCommandAction(key, INVERSE_KEYMAP[key])
                    for key in ("forward", "back", "left", "right", "jump", "sneak", "attack")]
            items = dict(_other="none", _default="none")
            return keys + [handlers.CameraAction(), handlers.PlaceBlock(["none"] + mc.ALL_ITEMS, **items),
                           handlers.EquipAction(["none"] + mc.ALL_ITEMS, **items),
                           handlers.CraftAction(["none"] + mc.ALL_ITEMS, **items),
                           handlers.CraftNearbyAction(["none"] + mc.ALL_ITEMS, **items),
                           handlers.SmeltItemNearby(["none"] + mc.ALL_ITEMS, **items)]

        def create_server_world_generators(self) -> list:
            return [handlers.DefaultWorldGenerator(force_reset=True)]

        def create_server_quit_producers(self) -> list:
            return [handlers.ServerQuitWhenAnyAgentFinishes()]

        def create_server_initial_conditions(self) -> list:
            return [handlers.TimeInitialCondition(allow_passage_of_time=True, start_time=0),
                    handlers.SpawningInitialCondition(allow_spawning=True)]

        def create_agent_handlers(self) -> list:
            return []

        def create_rewardables(self) -> list:
            return []

        def create_server_decorators(self) -> list:
            return []

        def create_mission_handlers(self) -> list:
            return []

        def create_monitors(self) -> list:
            return []

        def is_from_folder(self, folder: str) -> bool:
            return folder == "none"

        def get_docstring(self) -> str:
            return "The DreamerV3 diamond task."

        def determine_success_from_rewards(self, rewards: list) -> bool:
            return True

    return Diamond().make()
