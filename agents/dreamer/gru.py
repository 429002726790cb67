"""The single GRU core of DreamerV1/V2 and the 2023 DreamerV3 code (danijar/dreamerv3 @ 8fa35f8,
danijar/dreamerv2 @ 07d906e, danijar/dreamer @ 56d4d44).

The previous stoch and action go through one input layer (`hidden` units), then a GRU cell whose one
linear layer maps concat(input, deter) to the reset, candidate and update parts (3 * deter), optionally
layer-normalised (V2, V3-2023: `rssm.core: gru`; V1 has no norm: `rssm.core: gru_nonorm`):
  r = sigmoid(reset); c = tanh(r * cand); u = sigmoid(update - 1); deter' = u * c + (1 - u) * deter.
The input layer is a dense layer of the RSSM's `Layer` (V1/V2: Dense -> ELU; V3-2023: LayerNorm, SiLU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from agents.dreamer import nets

if TYPE_CHECKING:
    from agents.dreamer.rssm import RSSMConfig

UPDATE_BIAS = -1.0
LAYERNORM_EPS = 1e-3  # Keras' default, as V2 and the 2023 V3 code


def _init(
    key: jax.Array, cfg: RSSMConfig, stoch_dim: int, act_dim: int, layer: nets.Layer, norm: bool
) -> nets.Params:
    k_in, k_cell = jax.random.split(key)
    params = {
        "in": nets.dense_init(k_in, stoch_dim + act_dim, cfg.hidden, layer),
        "cell": nets.linear_init(k_cell, cfg.hidden + cfg.deter, 3 * cfg.deter),
    }
    if norm:
        size = 3 * cfg.deter
        params["norm"] = {"scale": jnp.ones(size, jnp.float32), "offset": jnp.zeros(size, jnp.float32)}
    return params


def gru_init(key: jax.Array, cfg: RSSMConfig, stoch_dim: int, act_dim: int, layer: nets.Layer) -> nets.Params:
    return _init(key, cfg, stoch_dim, act_dim, layer, norm=True)


def gru_nonorm_init(
    key: jax.Array, cfg: RSSMConfig, stoch_dim: int, act_dim: int, layer: nets.Layer
) -> nets.Params:
    return _init(key, cfg, stoch_dim, act_dim, layer, norm=False)


def gru(p: nets.Params, deter: jax.Array, stoch: jax.Array, action: jax.Array) -> jax.Array:
    """One GRU step; the layer norm is applied when the parameters have one."""
    x = nets.dense(p["in"], jnp.concatenate([stoch, action], -1))
    parts = nets.linear(p["cell"], jnp.concatenate([x, deter], -1))
    if "norm" in p:
        parts = nets.layer_norm(p["norm"], parts, LAYERNORM_EPS)
    reset, cand, update = jnp.split(parts, 3, -1)
    reset = jax.nn.sigmoid(reset)
    cand = jnp.tanh(reset * cand)
    update = jax.nn.sigmoid(update + UPDATE_BIAS)
    return update * cand + (1.0 - update) * deter
