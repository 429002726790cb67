"""Actor distributions, scalar heads, exploration and the per-module Adam of the V1/V2/V3-2023 presets."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from agents.dreamer import dists, policies
from agents.dreamer.adam import adam_per_module
from agents.dreamer.explore import Exploration
from agents.dreamer.scalar_heads import NormalScalar, SymlogTwoHot

GRID = jnp.linspace(-1 + 1e-4, 1 - 1e-4, 200_001)


def density_1d(policy, out):
    """exp(logp) of a one-dimensional policy on a fine grid over (-1, 1)."""
    return jnp.exp(policy.logp(jnp.broadcast_to(out, (GRID.shape[0], 2)), GRID[:, None]))


@pytest.mark.parametrize("dist, raw_std", [("tanh_normal", -5.0), ("trunc_normal", -0.4)])
def test_log_prob_is_a_density_on_the_action_interval_matching_the_samples(dist, raw_std):
    """(tanh_normal's std at raw -5 is 0.69; at its initial 5 most mass would sit beyond the grid's ends.)"""
    policy = policies.make_policy(gym.spaces.Box(-1, 1, (1,), np.float32), dist=dist)
    out = jnp.array([0.7, raw_std])  # raw mean and std outputs
    dens = density_1d(policy, out)
    step = float(GRID[1] - GRID[0])
    assert float(dens.sum() * step) == pytest.approx(1.0, abs=2e-3)
    samples = policy.sample(jax.random.PRNGKey(1), jnp.broadcast_to(out, (100_000, 2)))
    assert float(samples.min()) > -1.0 and float(samples.max()) < 1.0
    grid_mean = float((dens * GRID).sum() * step)
    assert float(samples.mean()) == pytest.approx(grid_mean, abs=0.01)


def test_tanh_normal_has_v1_statistics_and_reparameterised_samples():
    policy = policies.TanhNormalPolicy(1)
    mean, std = policy._stats(jnp.array([[100.0, 0.0]]))
    assert float(mean[0, 0]) == pytest.approx(5.0, rel=1e-4) and float(std[0, 0]) == pytest.approx(5.0 + 1e-4)
    x = jnp.array([0.3, 0.0])
    eps_key = jax.random.PRNGKey(2)
    # d sample / d raw mean = (1 - tanh(u)^2) * d(5 tanh(m / 5)) / dm, u the pre-squash sample
    grad = jax.grad(lambda m: policy.sample(eps_key, jnp.array([m, 0.0]))[0])(0.3)
    u = jnp.arctanh(policy.sample(eps_key, x)[0])
    assert float(grad) == pytest.approx(float((1 - jnp.tanh(u) ** 2) * (1 - jnp.tanh(0.3 / 5) ** 2)), rel=1e-4)


def test_trunc_normal_entropy_and_pathwise_gradient_match_numerics():
    policy = policies.TruncNormalPolicy(1)
    out = jnp.array([0.7, -0.4])
    dens = density_1d(policy, out)
    step = float(GRID[1] - GRID[0])
    numeric = float(-(dens * jnp.log(dens)).sum() * step)
    assert float(policy.entropy(out)) == pytest.approx(numeric, abs=1e-3)
    # d E[a] / d raw mean: pathwise (reparameterised samples) vs the numerical density derivative
    keys = jax.random.split(jax.random.PRNGKey(3), 1)
    pathwise = jax.grad(lambda m: policy.sample(keys[0], jnp.broadcast_to(jnp.array([m, -0.4]), (200_000, 2))).mean())
    h = 1e-3
    mean_at = lambda m: float((density_1d(policy, jnp.array([m, -0.4])) * GRID).sum() * step)  # noqa: E731
    assert float(pathwise(0.7)) == pytest.approx((mean_at(0.7 + h) - mean_at(0.7 - h)) / (2 * h), abs=0.01)


def test_straight_through_discrete_samples_are_one_hot_with_probability_gradients():
    policy = policies.make_policy(gym.spaces.Discrete(3), straight_through=True)
    logits = jnp.array([0.1, 1.0, -0.5])
    sample = policy.sample(jax.random.PRNGKey(0), logits)
    np.testing.assert_allclose(sample, jax.nn.one_hot(jnp.argmax(sample), 3), atol=1e-6)
    grad = jax.grad(lambda l: (policy.sample(jax.random.PRNGKey(0), l) * jnp.arange(3.0)).sum())(logits)
    probs = jax.nn.softmax(logits)
    np.testing.assert_allclose(grad, probs * (jnp.arange(3.0) - (probs * jnp.arange(3.0)).sum()), rtol=1e-5)
    plain = policies.make_policy(gym.spaces.Discrete(3))
    assert not isinstance(plain, policies.StraightThroughDiscrete)
    with pytest.raises(ValueError, match="valid: bounded_normal, trunc_normal, tanh_normal"):
        policies.make_policy(gym.spaces.Discrete(3), dist="beta")


def test_normal_and_symlog_twohot_scalars():
    normal = NormalScalar()
    out = jnp.array([[1.5], [-2.0]])
    np.testing.assert_allclose(normal.loss(out, jnp.array([0.5, 0.0])), [0.5, 2.0])
    np.testing.assert_allclose(normal.mean(out), [1.5, -2.0])
    twohot = SymlogTwoHot(255)
    assert float(twohot.bins[1] - twohot.bins[0]) == pytest.approx(40 / 254)  # even in symlog space
    logits_of = lambda t: jnp.log(dists.twohot_encode(dists.symlog(jnp.float32(t)), twohot.bins) + 1e-30)  # noqa: E731
    for target in (0.0, 0.37, 123.4, -5000.0):
        assert float(twohot.mean(logits_of(target))) == pytest.approx(target, rel=1e-3, abs=1e-5)
        assert float(twohot.loss(logits_of(target), jnp.float32(target))) < float(
            twohot.loss(logits_of(target + 50), jnp.float32(target)))


def test_exploration_prefills_uniformly_then_adds_v1_noise():
    explore = Exploration(random_prefill=True, noise=0.3, prefill_steps=100, discrete=False, seed=0)
    policy_action = np.full((20_000, 2), 0.5, np.float32)
    prefill = explore(policy_action, agent_steps=99)
    assert abs(prefill.mean()) < 0.02 and prefill.min() >= -1 and prefill.max() <= 1
    assert prefill.std() == pytest.approx(1 / np.sqrt(3), rel=0.02)
    noisy = explore(policy_action, agent_steps=100)
    assert noisy.max() <= 1.0 and (noisy - 0.5).std() == pytest.approx(0.3, rel=0.05)  # clipping is rare at 0.5
    discrete = Exploration(random_prefill=False, noise=0.3, prefill_steps=100, discrete=True, seed=0)
    chosen = discrete(np.eye(4, dtype=np.float32)[np.zeros(20_000, int)], agent_steps=0)
    assert chosen.sum(1).max() == 1.0
    assert (chosen[:, 0] == 0).mean() == pytest.approx(0.3 * 3 / 4, abs=0.015)  # random picks may hit action 0
    quiet = Exploration(random_prefill=False, noise=0.0, prefill_steps=100, discrete=False, seed=0)
    assert quiet(policy_action, agent_steps=0) is policy_action


def test_adam_per_module_uses_each_groups_learning_rate_and_decay():
    groups = {"model": {"lr": 1e-2, "eps": 1e-8, "clip": 100.0, "wd": 0.0},
              "actor": {"lr": 1e-3, "eps": 1e-8, "clip": 100.0, "wd": 0.0},
              "critic": {"lr": 1e-4, "eps": 1e-8, "clip": 100.0, "wd": 0.5}}
    opt = adam_per_module(**groups)
    params = {name: {"w": jnp.ones(3)} for name in ("enc", "dyn", "rew", "pol", "val")}
    grads = jax.tree.map(lambda p: 7.0 * p, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    # First Adam step: -lr * g / |g| per entry, plus the decoupled decay -lr * wd * param.
    for name, lr in (("enc", 1e-2), ("dyn", 1e-2), ("rew", 1e-2), ("pol", 1e-3), ("val", 1e-4 * 1.5)):
        np.testing.assert_allclose(updates[name]["w"], -lr, rtol=1e-5)
    with pytest.raises(ValueError, match="needs the sections model, actor, critic"):
        adam_per_module(model=groups["model"])


def test_adam_per_module_clips_each_group_by_its_own_global_norm():
    clip = {"lr": 1.0, "eps": 1e-8, "clip": 1.0, "wd": 0.0}
    opt = optax.chain(adam_per_module(model=clip, actor=clip, critic=clip))
    params = {"dyn": jnp.zeros(4), "pol": jnp.zeros(4), "val": jnp.zeros(1)}
    state = opt.init(params)
    small = {"dyn": jnp.full(4, 1e3), "pol": jnp.full(4, 1e-3), "val": jnp.ones(1)}
    # Adam's second step reveals the clipped gradient scale: after a clipped huge first gradient, an
    # unclipped small one moves the actor (its own norm) but not the clipped model group in the same way.
    _, state = opt.update(small, state, params)
    inner = state[0].inner_states
    nu_model, nu_actor = inner["model"].inner_state[1][0].nu["dyn"], inner["actor"].inner_state[1][0].nu["pol"]
    np.testing.assert_allclose(nu_model, 0.001 * 0.25, rtol=1e-4)  # 1e3 * 4 entries clipped to norm 1: 0.5 each
    np.testing.assert_allclose(nu_actor, 0.001 * 1e-6, rtol=1e-4)  # below the clip: unchanged
