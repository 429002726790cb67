"""Gaussian vs categorical latents, KL balancing, free nats vs free bits (agents/dreamer/gaussian.py, kl.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.dreamer import dists
from agents.dreamer.gaussian import GaussianLatent
from agents.dreamer.kl import kl_losses
from agents.dreamer.rssm import RSSM, CategoricalLatent, RSSMConfig


def gaussian_stats(mean, std):
    return jnp.concatenate([jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)], -1)


def test_gaussian_kl_matches_the_closed_form_and_monte_carlo():
    latent = GaussianLatent(RSSMConfig(deter=8, hidden=8, classes=1, stoch=2))
    p, q = gaussian_stats([0.0, 0.5], [1.0, 0.3]), gaussian_stats([1.0, 0.0], [2.0, 0.6])
    # KL(N(0,1) || N(1,2)) = ln 2 + (1 + 1) / 8 - 1/2; KL(N(.5,.3) || N(0,.6)) = ln 2 + (.09 + .25) / .72 - 1/2
    expected = (math.log(2) + 2 / 8 - 0.5) + (math.log(2) + 0.34 / 0.72 - 0.5)
    assert float(latent.kl(p, q)) == pytest.approx(expected, rel=1e-5)
    assert float(latent.kl(p, p)) == pytest.approx(0.0, abs=1e-6)
    x = latent.sample(jax.random.PRNGKey(0), jnp.broadcast_to(p, (200_000, 4)))
    logdens = lambda s, x: -0.5 * (((x - s[:2]) / s[2:]) ** 2).sum(-1) - jnp.log(s[2:]).sum()  # noqa: E731
    assert float((logdens(p, x) - logdens(q, x)).mean()) == pytest.approx(expected, rel=0.02)


def test_gaussian_stats_keep_the_std_above_its_minimum_and_size_the_rssm():
    cfg = RSSMConfig(deter=8, hidden=8, classes=1, stoch=30, latent="gaussian", core="gru_nonorm", blocks=1)
    model = RSSM(cfg, token_dim=5, act_dim=2)
    assert (model.latent.out_dim, model.latent.flat_dim, model.feat_dim) == (60, 30, 38)
    stats = model.latent.stats(jnp.full((3, 60), -50.0))
    assert np.allclose(stats[:, 30:], 0.1)
    entropy = model.latent.entropy(stats)
    assert np.allclose(entropy, 30 * (0.5 * math.log(2 * math.pi * math.e) + math.log(0.1)), rtol=1e-5)


def test_categorical_kl_sums_over_the_latents():
    latent = CategoricalLatent(RSSMConfig(deter=8, hidden=8, classes=2, stoch=3, unimix=0.0))
    p = latent.stats(jnp.log(jnp.array([[0.5, 0.5] * 3])))
    q = latent.stats(jnp.log(jnp.array([[0.9, 0.1] * 3])))
    one = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert float(latent.kl(p, q)[0]) == pytest.approx(3 * one, rel=1e-5)
    assert float(dists.categorical_kl(p, p).sum()) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("make", ["gaussian", "categorical"])
def test_balance_splits_the_kl_gradient_between_prior_and_posterior(make):
    """dyn 0.8 / rep 0.2: the prior gets 0.8 and the posterior 0.2 of the plain KL's gradient."""
    if make == "gaussian":
        latent = GaussianLatent(RSSMConfig(deter=8, hidden=8, classes=1, stoch=3))
    else:
        latent = CategoricalLatent(RSSMConfig(deter=8, hidden=8, classes=4, stoch=3, unimix=0.01))
    rng = np.random.default_rng(0)
    post_out, prior_out = (jnp.asarray(rng.normal(size=(5, latent.out_dim)), jnp.float32) for _ in range(2))

    def balanced(post_out, prior_out):
        terms = kl_losses(latent.kl, latent.stats(post_out), latent.stats(prior_out), 0.0, free_avg=True)
        return 0.8 * terms["dyn"] + 0.2 * terms["rep"]

    def plain(post_out, prior_out):
        return latent.kl(latent.stats(post_out), latent.stats(prior_out)).mean()

    g_post, g_prior = jax.grad(balanced, (0, 1))(post_out, prior_out)
    f_post, f_prior = jax.grad(plain, (0, 1))(post_out, prior_out)
    np.testing.assert_allclose(g_prior, 0.8 * f_prior, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(g_post, 0.2 * f_post, rtol=1e-4, atol=1e-7)
    # V1's dyn 1.0 + rep 1.0 is the plain KL's gradient.
    v1 = lambda a, b: sum(kl_losses(latent.kl, latent.stats(a), latent.stats(b), 0.0, True).values())  # noqa: E731
    for got, want in zip(jax.grad(v1, (0, 1))(post_out, prior_out), (f_post, f_prior)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)


def test_free_bits_clip_each_entry_free_nats_clip_the_mean():
    """Per-entry KLs 0.5 and 2.0 against 1 free nat: free bits drop the first entry's gradient, free nats
    keep both (mean 1.25); with 0.5 and 1.2 (mean 0.85) free nats drop everything, free bits keep 1.2."""
    kl = lambda p, q: p * q  # noqa: E731  an identity KL: the gradient of entry i w.r.t. prior is post_i
    post = jnp.array([0.5, 2.0])

    def grad_prior(post, free_avg):
        return jax.grad(lambda q: kl_losses(kl, post, q, 1.0, free_avg)["dyn"].sum())(jnp.ones(2))

    np.testing.assert_allclose(grad_prior(post, free_avg=False), [0.0, 2.0])
    np.testing.assert_allclose(grad_prior(post, free_avg=True), [0.25, 1.0])
    post = jnp.array([0.5, 1.2])
    np.testing.assert_allclose(grad_prior(post, free_avg=False), [0.0, 1.2])
    np.testing.assert_allclose(grad_prior(post, free_avg=True), [0.0, 0.0])
    assert float(kl_losses(kl, post, jnp.ones(2), 1.0, True)["rep"]) == 1.0


@pytest.mark.parametrize("core", ["gru", "gru_nonorm"])
def test_gru_core_follows_the_v1_v2_cell(core):
    from agents.dreamer import nets

    cfg = RSSMConfig(deter=6, hidden=5, classes=1, stoch=3, latent="gaussian", core=core, blocks=1)
    model = RSSM(cfg, token_dim=4, act_dim=2)
    p = model.init(jax.random.PRNGKey(0))["core"]
    assert ("norm" in p) == (core == "gru")
    rng = np.random.default_rng(0)
    deter, stoch = (jnp.asarray(rng.normal(size=(2, n)), jnp.float32) for n in (6, 3))
    action = jnp.asarray(rng.uniform(-1, 1, size=(2, 2)), jnp.float32)  # |a| <= 1: the RSSM leaves it as is
    x = nets.dense(p["in"], jnp.concatenate([stoch, action], -1))
    parts = nets.linear(p["cell"], jnp.concatenate([x, deter], -1))
    if core == "gru":
        mean, std = parts.mean(-1, keepdims=True), parts.std(-1, keepdims=True)
        expected = (parts - mean) / np.sqrt(std**2 + 1e-3)
        np.testing.assert_allclose(nets.layer_norm(p["norm"], parts, 1e-3), expected, rtol=1e-4)
        parts = nets.layer_norm(p["norm"], parts, 1e-3)
    reset, cand, update = np.split(np.asarray(parts), 3, -1)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    cand = np.tanh(sigmoid(reset) * cand)
    update = sigmoid(update - 1.0)
    expected = update * cand + (1 - update) * np.asarray(deter)
    np.testing.assert_allclose(model.step({"core": p}, {"deter": deter, "stoch": stoch}, action), expected, rtol=1e-5)
