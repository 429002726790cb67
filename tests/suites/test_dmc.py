"""DMC suites on real dm_control: observation keys, time limit, repeat, rendering, seeding."""

import numpy as np
import pytest

from suites.dmc import DMCEnv, choose_gl, split_task


def test_proprio_observations_are_separate_float32_vectors(load_suite):
    env = load_suite("dmc_proprio").make_env("walker_walk", seed=0, mode="train")
    assert env.action_space.shape == (6,)
    assert (env.action_space.low == -1).all() and (env.action_space.high == 1).all()
    obs, _ = env.reset()
    assert {k: v.shape for k, v in obs.items()} == {"orientations": (14,), "height": (1,), "velocity": (9,)}
    assert all(v.dtype == np.float32 for v in obs.values())
    assert obs in env.observation_space


def test_episode_is_500_agent_steps_at_repeat_2_and_truncated(load_suite):
    suite = load_suite("dmc_proprio")
    assert suite.protocol.action_repeat == 2
    env = suite.make_env("cartpole_swingup", seed=0, mode="train")
    env.reset()
    ends = [env.step(env.action_space.sample())[2:4] for _ in range(500)]
    assert ends[:499] == [(False, False)] * 499
    assert ends[499] == (False, True)


def test_repeat_sums_rewards_of_the_underlying_task():
    from dm_control import suite

    env = DMCEnv("walker_stand", seed=5, repeat=2, image=False, proprio=True)
    raw = suite.load("walker", "stand", task_kwargs={"random": 5})
    obs, _ = env.reset()
    time_step = raw.reset()
    np.testing.assert_allclose(obs["orientations"], time_step.observation["orientations"], rtol=1e-6)
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 6))
    total = 0.0
    for action in actions:
        obs, reward, *_ = env.step(action.astype(np.float32))
        expected = sum(raw.step(action.astype(np.float32)).reward for _ in range(2))
        assert reward == pytest.approx(expected, rel=1e-6)
        total += reward
    assert total > 1  # walker_stand pays for height and uprightness: the comparison is not 0 == 0


@pytest.mark.parametrize("task, camera", [("walker_walk", 0), ("quadruped_run", 2)])
def test_image_is_rendered_from_the_paper_camera(load_suite, task, camera):
    env = load_suite("dmc_vision").make_env(task, seed=0, mode="train")
    assert set(env.observation_space) == {"image"}
    env.reset()
    obs, *_ = env.step(env.action_space.sample())
    image = obs["image"]
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert image.std() > 10 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # not blank
    physics = env.unwrapped._env.physics  # dm_control's own renderer at the same settings
    np.testing.assert_array_equal(image, physics.render(64, 64, camera_id=camera))


def test_two_envs_in_one_process_render_independently(load_suite):
    suite = load_suite("dmc_vision")
    first = suite.make_env("cheetah_run", seed=0, mode="train")
    second = suite.make_env("cheetah_run", seed=0, mode="train")
    a = first.reset(seed=1)[0]["image"]
    first.close()  # freeing one env's GL objects must leave the other's intact
    assert (second.reset(seed=1)[0]["image"] == a).all()


def test_reset_seed_reproduces_the_initial_state(load_suite):
    env = load_suite("dmc_proprio").make_env("reacher_easy", seed=0, mode="train")
    first, second, other = (env.reset(seed=s)[0]["position"] for s in (3, 3, 4))
    np.testing.assert_array_equal(first, second)
    assert (first != other).any()


def test_task_names(load_suite):
    suite = load_suite("dmc_vision")
    assert len(suite.tasks) == 20 and len(load_suite("dmc_proprio").tasks) == 18
    assert suite.canonical_task("cup_catch") == "ball_in_cup_catch"
    assert split_task("ball_in_cup_catch") == ("ball_in_cup", "catch")
    with pytest.raises(ValueError, match="valid: acrobot_swingup"):
        split_task("walker_fly")


def test_mujoco_gl_is_chosen_unless_set(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert choose_gl() == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    assert choose_gl() == "egl"  # this machine has working EGL (.ci/run installs libegl1 and Mesa)
