"""Atari suites on the real ALE: spaces, frame cap, no-op starts, max-pooling, seeding."""

import ale_py
import numpy as np
import pytest

from suites.atari import AtariEnv, process_screen


def rollout(env, steps, seed=0, action_seed=0):
    """Images of `steps` agent steps with seeded random actions (reset included)."""
    obs, _ = env.reset(seed=seed)
    images, rng = [obs["image"]], np.random.default_rng(action_seed)
    for _ in range(steps):
        obs, *_ = env.step(int(rng.integers(env.action_space.n)))
        images.append(obs["image"])
    return np.array(images)


@pytest.mark.parametrize("game, actions", [("pong", 6), ("breakout", 4), ("ms_pacman", 9), ("seaquest", 18)])
def test_atari26_spaces_and_minimal_action_sets(load_suite, game, actions):
    env = load_suite("atari26").make_env(game, seed=0, mode="train")
    assert env.action_space.n == actions
    assert env.observation_space["image"].shape == (64, 64, 3)
    obs, _ = env.reset()
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    obs, reward, terminated, truncated, info = env.step(0)
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert obs["image"].flags.writeable
    assert isinstance(reward, float) and not terminated and not truncated
    assert obs in env.observation_space


def test_atari57_is_gray_96_with_all_18_actions(load_suite):
    suite = load_suite("atari57")
    assert len(suite.tasks) == 57
    env = suite.make_env("pong", seed=0, mode="train")
    assert env.action_space.n == 18
    obs, _ = env.reset()
    assert obs["image"].shape == (96, 96, 1) and obs["image"].dtype == np.uint8
    assert obs["image"].max() > obs["image"].min()


def test_atari57_64x64_rgb_override(load_suite):
    env = load_suite("atari57", env={"size": [64, 64], "gray": False, "resize": "area"}).make_env("pong", 0, "train")
    assert env.reset()[0]["image"].shape == (64, 64, 3)


def test_aliases_reach_canonical_names(load_suite):
    suite = load_suite("atari26")
    assert suite.canonical_task("MsPacman") == "ms_pacman"
    assert suite.canonical_task("james_bond") == "jamesbond"
    with pytest.raises(ValueError, match="valid tasks: alien, amidar"):
        suite.canonical_task("tetris")


def test_frame_cap_truncates_in_frames(load_suite):
    suite = load_suite("atari26", protocol={"episode_cap": 40})
    env = suite.make_env("pong", seed=0, mode="train")
    env.reset()
    ends = [env.step(0)[2:4] for _ in range(10)]
    assert ends[:9] == [(False, False)] * 9
    assert ends[9] == (False, True)  # 10 agent steps x 4 frames = the 40-frame cap, truncated not terminated
    assert load_suite("atari26").protocol.episode_cap == 108_000


def test_game_over_terminates(load_suite):
    env = load_suite("atari26").make_env("breakout", seed=0, mode="train")
    env.reset(seed=0)
    for step in range(5000):  # NOOP never serves the ball again after it is lost; FIRE serves
        _, _, terminated, truncated, _ = env.step(1 if step % 50 == 0 else 0)
        if terminated or truncated:
            break
    assert terminated and not truncated


def test_noops_are_drawn_from_0_to_30_at_every_reset(load_suite):
    env = load_suite("atari26").make_env("pong", seed=0, mode="train")
    env.reset(seed=1)
    counts = [env.reset()[1]["noops"] for _ in range(300)]
    assert min(counts) == 0 and max(counts) == 30
    assert len(set(counts)) == 31
    no_noops = load_suite("atari26", env={"noops": 0}).make_env("pong", seed=0, mode="train")
    assert {no_noops.reset()[1]["noops"] for _ in range(20)} == {0}


def test_observation_is_max_of_the_last_two_frames(load_suite):
    """At native size the image must equal max(frame 4k-1, frame 4k) of an independent ALE."""
    suite = load_suite("atari26", env={"size": [210, 160], "resize": "area", "noops": 0})
    env = suite.make_env("space_invaders", seed=0, mode="train")  # its sprites flicker between frames
    images = rollout(env, 50)

    ale = ale_py.ALEInterface()
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(ale_py.roms.get_rom_path("space_invaders"))
    ale.reset_game()
    actions, rng = ale.getMinimalActionSet(), np.random.default_rng(0)
    frames = [ale.getScreenRGB()]
    for _ in range(50):
        action = actions[int(rng.integers(len(actions)))]
        for _ in range(4):
            ale.act(action)
            frames.append(ale.getScreenRGB())
    frames = np.array(frames)
    pooled = np.maximum(frames[3::4], frames[4::4])
    np.testing.assert_array_equal(images[1:], pooled)
    assert (pooled != frames[4::4]).any()  # pooling changes images: the test can tell


def test_reset_seed_reproduces_episodes_with_sticky_actions(load_suite):
    suite = load_suite("atari57", env={"size": [64, 64]})
    first = rollout(suite.make_env("breakout", seed=0, mode="train"), 200, seed=7)
    second = rollout(suite.make_env("breakout", seed=3, mode="eval"), 200, seed=7)
    other = rollout(suite.make_env("breakout", seed=0, mode="train"), 200, seed=8)  # same actions
    np.testing.assert_array_equal(first, second)
    assert (first != other).any()


def test_unknown_settings_are_named(load_suite):
    with pytest.raises(ValueError, match="valid: minimal, all"):
        load_suite("atari26", env={"actions": "some"}).make_env("pong", 0, "train")
    with pytest.raises(ValueError, match="valid modes: train, eval"):
        load_suite("atari26").make_env("pong", 0, "test")


def test_gray_is_the_official_truncated_luminance_of_the_resized_image():
    from PIL import Image

    screens = rollout(AtariEnv("seaquest", seed=0, size=(210, 160), resize="area", noops=0), 30)[1:]
    screens[0, :5, :5] = 255  # saturated white: 255 x (0.299 + 0.587 + 0.114) is not exactly 255.0
    weights = np.array([0.299, 0.587, 1 - (0.299 + 0.587)])
    for screen in screens:
        resized = np.asarray(Image.fromarray(screen).resize((96, 96), Image.BILINEAR))
        expected = (resized * weights).sum(-1).astype(np.uint8)[:, :, None]  # dreamerv3 embodied/envs/atari.py
        np.testing.assert_array_equal(process_screen(screen, (96, 96), True, "pillow"), expected)
