"""Gaussian stochastic latent of DreamerV1 (danijar/dreamer @ 56d4d44): `stoch` independent normals per state.

The RSSM's prior and posterior layers output (mean, raw std) for each of the `stoch` dimensions; the
std is softplus(raw) + 0.1 as in V1's `min_stddev`. Samples are reparameterised (mean + std * noise),
so gradients reach both statistics. Plugged into the RSSM as `rssm.latent: gaussian`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from agents.dreamer.rssm import RSSMConfig

MIN_STD = 0.1


class GaussianLatent:
    """Statistics are stored as one array (..., 2 * stoch): the means, then the stds."""

    def __init__(self, cfg: RSSMConfig):
        self.stoch = cfg.stoch
        self.out_dim, self.flat_dim = 2 * cfg.stoch, cfg.stoch

    def stats(self, out: jax.Array) -> jax.Array:
        mean, raw = jnp.split(out.astype(jnp.float32), 2, -1)
        return jnp.concatenate([mean, jax.nn.softplus(raw) + MIN_STD], -1)

    def sample(self, key: jax.Array, stats: jax.Array) -> jax.Array:
        mean, std = jnp.split(stats, 2, -1)
        return mean + std * jax.random.normal(key, mean.shape)

    def mode(self, stats: jax.Array) -> jax.Array:
        return jnp.split(stats, 2, -1)[0]

    def kl(self, p: jax.Array, q: jax.Array) -> jax.Array:
        """KL(p || q) of diagonal normals, summed over the latent dimensions."""
        (mp, sp), (mq, sq) = jnp.split(p, 2, -1), jnp.split(q, 2, -1)
        return (jnp.log(sq / sp) + (jnp.square(sp) + jnp.square(mp - mq)) / (2.0 * jnp.square(sq)) - 0.5).sum(-1)

    def entropy(self, stats: jax.Array) -> jax.Array:
        std = jnp.split(stats, 2, -1)[1]
        return (0.5 * math.log(2.0 * math.pi * math.e) + jnp.log(std)).sum(-1)
