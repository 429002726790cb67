"""Actor distributions of every Dreamer version, chosen by `policy.dist` (danijar/dreamerv3 @ e3f0224,
danijar/dreamerv2 @ 07d906e, danijar/dreamer @ 56d4d44).

Continuous actions (the policy head outputs (..., 2A)):
- 'bounded_normal' (V3): heads.BoundedNormalPolicy, mean tanh(x), std in [minstd, maxstd].
- 'trunc_normal' (V2): normal with mean tanh(x) and std 2 * sigmoid(s / 2) + minstd, truncated to [-1, 1];
  samples by the inverse CDF, so they are reparameterised (dynamics backprop needs that).
- 'tanh_normal' (V1): normal with mean 5 * tanh(m / 5) and std softplus(s + softplus^-1(5)) + 1e-4,
  squashed by tanh; the mode is tanh of the mean. The entropy is the base normal's entropy plus the
  tanh log-det at the mean (V1 estimated it from samples; no V1 loss uses it, it is only reported).
Discrete actions: heads.DiscretePolicy; `straight_through` (V1's dynamics backprop on one-hot actions)
makes samples carry the probabilities' gradient.
"""

from __future__ import annotations

import math

import gymnasium as gym
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

from agents.dreamer import dists, heads

sg = jax.lax.stop_gradient


class StraightThroughDiscrete(heads.DiscretePolicy):
    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        logp = self._logp(out)
        onehot = jax.nn.one_hot(jax.random.categorical(key, logp), self.act_dim, dtype=jnp.float32)
        probs = jnp.exp(logp)
        return onehot + probs - sg(probs)


class TruncNormalPolicy:
    def __init__(self, dims: int, minstd: float = 0.1):
        self.act_dim, self.out_dim, self.minstd = dims, 2 * dims, minstd

    def _stats(self, out: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        """Mean, std and the standardised bounds of [-1, 1]."""
        x, s = jnp.split(out.astype(jnp.float32), 2, -1)
        mean, std = jnp.tanh(x), 2.0 * jax.nn.sigmoid(s / 2.0) + self.minstd
        return mean, std, (-1.0 - mean) / std, (1.0 - mean) / std

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        mean, std, lo, hi = self._stats(out)
        return mean + std * jax.random.truncated_normal(key, lo, hi, mean.shape)

    def mode(self, out: jax.Array) -> jax.Array:
        return self._stats(out)[0]  # the mean lies inside the bounds, so it is the truncated normal's mode

    def logp(self, out: jax.Array, action: jax.Array) -> jax.Array:
        mean, std, lo, hi = self._stats(out)
        z = (action - mean) / std
        mass = jnp.maximum(ndtr(hi) - ndtr(lo), 1e-8)
        return (-0.5 * jnp.square(z) - jnp.log(std) - 0.5 * math.log(2 * math.pi) - jnp.log(mass)).sum(-1)

    def entropy(self, out: jax.Array) -> jax.Array:
        _, std, lo, hi = self._stats(out)
        mass = jnp.maximum(ndtr(hi) - ndtr(lo), 1e-8)
        pdf = lambda z: jnp.exp(-0.5 * jnp.square(z)) / math.sqrt(2 * math.pi)  # noqa: E731
        ent = 0.5 * math.log(2 * math.pi * math.e) + jnp.log(std * mass) + (lo * pdf(lo) - hi * pdf(hi)) / (2 * mass)
        return ent.sum(-1)


class TanhNormalPolicy:
    MEAN_SCALE, INIT_STD, MIN_STD = 5.0, 5.0, 1e-4

    def __init__(self, dims: int):
        self.act_dim, self.out_dim = dims, 2 * dims

    def _stats(self, out: jax.Array) -> tuple[jax.Array, jax.Array]:
        m, s = jnp.split(out.astype(jnp.float32), 2, -1)
        raw_init = math.log(math.expm1(self.INIT_STD))
        return self.MEAN_SCALE * jnp.tanh(m / self.MEAN_SCALE), jax.nn.softplus(s + raw_init) + self.MIN_STD

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        mean, std = self._stats(out)
        return jnp.tanh(mean + std * jax.random.normal(key, mean.shape))

    def mode(self, out: jax.Array) -> jax.Array:
        return jnp.tanh(self._stats(out)[0])  # V1 took the likeliest of 100 samples (see docs/reference/presets.md)

    def logp(self, out: jax.Array, action: jax.Array) -> jax.Array:
        mean, std = self._stats(out)
        action = jnp.clip(action, -1.0 + 1e-6, 1.0 - 1e-6)
        return dists.normal_logp(mean, std, jnp.arctanh(action)) - jnp.log1p(-jnp.square(action)).sum(-1)

    def entropy(self, out: jax.Array) -> jax.Array:
        mean, std = self._stats(out)
        log_det = 2.0 * (math.log(2.0) - mean - jax.nn.softplus(-2.0 * mean))  # log(1 - tanh(mean)^2)
        return dists.normal_entropy(std) + log_det.sum(-1)


CONTINUOUS = ("bounded_normal", "trunc_normal", "tanh_normal")


def make_policy(
    act_space: gym.Space,
    dist: str = "bounded_normal",
    unimix: float = 0.0,
    minstd: float = 0.1,
    maxstd: float = 1.0,
    straight_through: bool = False,
):
    """The policy output for `act_space`: `dist` picks the continuous distribution."""
    if dist not in CONTINUOUS:
        raise ValueError(f"unknown policy.dist '{dist}'; valid: {', '.join(CONTINUOUS)}")
    if isinstance(act_space, gym.spaces.Discrete):
        return (StraightThroughDiscrete if straight_through else heads.DiscretePolicy)(int(act_space.n), unimix)
    if not (isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1):
        raise ValueError(f"Dreamer supports Discrete or 1-d Box action spaces, got {act_space}")
    dims = int(act_space.shape[0])
    if dist == "trunc_normal":
        return TruncNormalPolicy(dims, minstd)
    if dist == "tanh_normal":
        return TanhNormalPolicy(dims)
    return heads.BoundedNormalPolicy(dims, minstd, maxstd)
