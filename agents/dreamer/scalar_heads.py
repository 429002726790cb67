"""Scalar outputs (reward and value heads) of the earlier Dreamer versions, beside V3's `TwoHot`.

- `NormalScalar` ('mse', V1/V2): a unit-variance normal; the loss is its negative log-density without
  the constant, 0.5 * (out - target)^2, and the prediction is the mean.
- `SymlogTwoHot` ('twohot_symlog', 2023 V3 code, danijar/dreamerv3 @ 8fa35f8): 255 bins evenly spaced in [-20, 20] in
  symlog space; the target is symlog-transformed before the twohot encoding, and the prediction is the
  symexp of the expected bin.
Both take the `bins` argument of the heads config so every scalar output is built the same way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from agents.dreamer import dists

sg = jax.lax.stop_gradient


class NormalScalar:
    def __init__(self, bins: int = 255):
        del bins  # one output unit: the mean
        self.out_dim = 1

    def loss(self, out: jax.Array, target: jax.Array) -> jax.Array:
        return 0.5 * jnp.square(out[..., 0].astype(jnp.float32) - sg(target.astype(jnp.float32)))

    def mean(self, out: jax.Array) -> jax.Array:
        return out[..., 0].astype(jnp.float32)


class SymlogTwoHot:
    def __init__(self, bins: int = 255, limit: float = 20.0):
        self.bins = jnp.linspace(-limit, limit, bins)
        self.out_dim = bins

    def loss(self, out: jax.Array, target: jax.Array) -> jax.Array:
        return dists.twohot_loss(out, dists.symlog(target.astype(jnp.float32)), self.bins)

    def mean(self, out: jax.Array) -> jax.Array:
        probs = jax.nn.softmax(out.astype(jnp.float32))
        return dists.symexp((probs * self.bins).sum(-1))
