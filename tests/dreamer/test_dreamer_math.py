"""Dreamer's numerical pieces against their definitions: transforms, twohot, returns, norms, optimiser."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.dreamer import behavior, dists, optim


def test_symlog_symexp_inverse_and_shape():
    x = jnp.array([-1e6, -20.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 20.0, 1e6])
    np.testing.assert_allclose(dists.symexp(dists.symlog(x)), x, rtol=1e-5)
    np.testing.assert_allclose(dists.symlog(jnp.array([np.e - 1, -(np.e - 1)])), [1.0, -1.0], rtol=1e-6)
    assert float(dists.symlog(0.0)) == 0.0


def test_twohot_bins_are_symmetric_with_exact_zero():
    bins = dists.twohot_bins(255)
    assert bins.shape == (255,) and float(bins[127]) == 0.0
    np.testing.assert_array_equal(bins, -bins[::-1])
    np.testing.assert_allclose(bins[-1], np.expm1(20.0), rtol=1e-5)
    assert np.all(np.diff(np.asarray(bins)) > 0)


@pytest.mark.parametrize("target", [0.0, 0.3, -2.5, 1.0, 17.0, -480.0, 1e5])
def test_twohot_encode_decode_round_trip(target):
    bins = dists.twohot_bins(255)
    weights = dists.twohot_encode(jnp.array(target), bins)
    assert weights.shape == (255,) and int((weights > 0).sum()) <= 2
    np.testing.assert_allclose(float(weights.sum()), 1.0, rtol=1e-6)
    np.testing.assert_allclose(float((weights * bins).sum()), target, rtol=1e-5, atol=1e-6)
    # A head whose logits are the log of those weights predicts the target back.
    logits = jnp.log(jnp.maximum(weights, 1e-30))
    np.testing.assert_allclose(float(dists.twohot_mean(logits, bins)), target, rtol=1e-5, atol=1e-5)


def test_twohot_mean_is_exactly_zero_for_uniform_logits():
    assert float(dists.twohot_mean(jnp.zeros(255), dists.twohot_bins(255))) == 0.0


def test_twohot_loss_gradient_is_softmax_minus_target():
    bins = dists.twohot_bins(255)
    logits = jax.random.normal(jax.random.PRNGKey(0), (255,))
    grad = jax.grad(lambda x: dists.twohot_loss(x, jnp.array(3.7), bins))(logits)
    expected = jax.nn.softmax(logits) - dists.twohot_encode(jnp.array(3.7), bins)
    np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_onehot_sample_straight_through():
    logp = dists.unimix_logits(jnp.array([[30.0, 0.0, -30.0]]), 0.01)
    np.testing.assert_allclose(jnp.exp(logp)[0, 2], 0.01 / 3, rtol=1e-4)  # the unimix floor
    np.testing.assert_allclose(jnp.exp(logp).sum(), 1.0, rtol=1e-6)
    sample = dists.onehot_sample(jax.random.PRNGKey(1), logp)
    np.testing.assert_allclose(sample.sum(), 1.0, atol=1e-6)
    assert set(np.round(np.asarray(sample), 5).ravel()) <= {0.0, 1.0}
    grad = jax.grad(lambda lp: (dists.onehot_sample(jax.random.PRNGKey(1), lp) * jnp.arange(3.0)).sum())(logp)
    assert np.abs(np.asarray(grad)).sum() > 0  # gradients reach the probabilities


def direct_lambda_return(rew, cont, boot, lam):
    """R_t = r_{t+1} + c_{t+1} ((1 - lam) v_{t+1} + lam R_{t+1}), R_T = v_T, written as loops."""
    n, t1 = rew.shape
    out = np.zeros((n, t1 - 1))
    for i in range(n):
        ret = boot[i, -1]
        for t in reversed(range(t1 - 1)):
            ret = rew[i, t + 1] + cont[i, t + 1] * ((1 - lam) * boot[i, t + 1] + lam * ret)
            out[i, t] = ret
    return out


def test_lambda_return_matches_direct_computation():
    rng = np.random.default_rng(0)
    rew, boot = rng.normal(size=(3, 16)), rng.normal(size=(3, 16))
    cont = rng.uniform(0.5, 1.0, size=(3, 16))
    got = behavior.lambda_return(jnp.zeros((3, 16)), 1.0 - jnp.array(cont), rew, boot, 1.0, 0.95)
    np.testing.assert_allclose(got, direct_lambda_return(rew, cont, boot, 0.95), rtol=1e-5, atol=1e-5)
    # With lambda 0 it is the one-step target.
    one = behavior.lambda_return(jnp.zeros((3, 16)), jnp.zeros((3, 16)), rew, boot, 0.9, 0.0)
    np.testing.assert_allclose(one, rew[:, 1:] + 0.9 * boot[:, 1:], rtol=1e-5)


def test_lambda_return_stops_at_episode_end():
    rew, boot = np.ones((1, 5)), np.full((1, 5), 10.0)
    last = np.array([[0, 0, 1, 0, 0]], np.float32)  # step 2 is the last of its episode
    ret = behavior.lambda_return(last, last, rew, boot, 0.9, 0.95)
    assert float(ret[0, 1]) == 1.0  # reward on arrival, nothing after a terminal step


def test_return_normalisation_percentile_ema_and_floor():
    state = behavior.retnorm_init()
    ret = jnp.arange(101.0)  # 5th percentile 5, 95th percentile 95
    state = behavior.retnorm_update(state, ret, rate=0.01)
    np.testing.assert_allclose([state["lo"], state["hi"]], [0.05, 0.95], rtol=1e-5)
    assert float(behavior.retnorm_scale(state)) == 1.0  # max(1, 0.9): small returns are not scaled up
    for _ in range(2000):
        state = behavior.retnorm_update(state, ret, rate=0.01)
    np.testing.assert_allclose(behavior.retnorm_scale(state), 90.0, rtol=1e-3)


def test_free_bits_clip_each_entry_and_stop_its_gradient():
    logp = jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]]))
    logq = jnp.log(jnp.array([[0.5, 0.5], [0.1, 0.9]]))
    def loss(lq):
        return jnp.maximum(1.0, dists.categorical_kl(logp, lq))
    values = loss(logq)
    assert float(values[0]) == 1.0 and float(values[1]) > 1.0  # KL 0 -> clipped to 1 nat; KL 1.76 kept
    grads = jax.jacobian(lambda lq: loss(lq).sum())(logq)
    assert float(jnp.abs(grads[0]).sum()) == 0.0 and float(jnp.abs(grads[1]).sum()) > 0.0


def test_optimizer_matches_its_formula():
    lr, warmup, agc, b1, b2, eps = 4e-5, 10, 0.3, 0.9, 0.999, 1e-20
    opt = optim.make_optimizer(
        {"kind": "laprop_agc", "lr": lr, "warmup": warmup, "agc": agc, "beta1": b1, "beta2": b2, "eps": eps}
    )
    params = {"w": jnp.array([1.0, -2.0, 0.5])}
    grads = [jnp.array([0.1, 0.2, -0.3]), jnp.array([5.0, -1.0, 2.0]), jnp.array([0.0, 0.01, 0.02])]
    state = opt.init(params)
    nu, mu, theta = np.zeros(3), np.zeros(3), np.array(params["w"])
    for step, g in enumerate(grads, start=1):
        updates, state = opt.update({"w": g}, state, params)
        params = {"w": params["w"] + updates["w"]}
        g = np.asarray(g, np.float64)
        g = g / max(1.0, np.linalg.norm(g) / (agc * max(1e-3, np.linalg.norm(theta))))
        nu = b2 * nu + (1 - b2) * g**2
        r = g / (np.sqrt(nu / (1 - b2**step)) + eps)
        mu = b1 * mu + (1 - b1) * r
        theta = theta - lr * min(1.0, (step - 1) / warmup) * mu / (1 - b1**step)
        np.testing.assert_allclose(params["w"], theta, rtol=1e-5, atol=1e-9)


def test_unknown_optimizer_lists_valid_kinds():
    with pytest.raises(ValueError, match="laprop_agc"):
        optim.make_optimizer({"kind": "sgd"})


@pytest.mark.parametrize("cin,cout,size", [(3, 8, 16), (5, 7, 8)])
def test_fast_convolutions_equal_conv_then_pool_and_upsample_then_conv(cin, cout, size):
    from agents.dreamer import nets

    p = nets.conv_init(jax.random.PRNGKey(0), cin, cout, 5)
    p["b"] = jnp.arange(cout) * 0.1
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 3, size, size, cin))
    np.testing.assert_allclose(nets.conv_pool(p, x), nets.max_pool2(nets.conv(p, x)), atol=1e-5)
    np.testing.assert_allclose(nets.upsample_conv(p, x), nets.conv(p, nets.upsample2(x)), atol=1e-5)
