"""Prediction heads on the RSSM features (danijar/dreamerv3 @ e3f0224): reward, continue, policy and value.

Each head is an MLP of dense layers (V3: Linear -> RMSNorm -> SiLU; the `Layer` is chosen by config)
followed by an output layer whose meaning is given by
a small output object: `TwoHot` for scalars (reward, value), `DiscretePolicy` or `BoundedNormalPolicy`
for actions; `policies.make_policy` picks the policy. Other Dreamer versions add their own output objects
(scalar_heads.py, policies.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from agents.dreamer import dists, nets
from agents.dreamer.scalar_heads import NormalScalar, SymlogTwoHot


class TwoHot:
    """255 symexp-spaced bins, cross-entropy to the twohot target, expectation as prediction."""

    def __init__(self, bins: int = 255):
        self.bins = dists.twohot_bins(bins)
        self.out_dim = bins

    def loss(self, out: jax.Array, target: jax.Array) -> jax.Array:
        return dists.twohot_loss(out, target, self.bins)

    def mean(self, out: jax.Array) -> jax.Array:
        return dists.twohot_mean(out, self.bins)


# twohot_symlog: the 2023 V3 code; mse: DreamerV1/V2 (scalar_heads.py)
SCALAR_OUTPUTS = {"twohot": TwoHot, "twohot_symlog": SymlogTwoHot, "mse": NormalScalar}


class DiscretePolicy:
    """Categorical over `n` actions; actions are one-hot float vectors inside the model."""

    def __init__(self, n: int, unimix: float = 0.0):
        self.out_dim = self.act_dim = n
        self.unimix = unimix

    def _logp(self, out: jax.Array) -> jax.Array:
        return dists.unimix_logits(out, self.unimix)

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        return jax.nn.one_hot(jax.random.categorical(key, self._logp(out)), self.act_dim, dtype=jnp.float32)

    def mode(self, out: jax.Array) -> jax.Array:
        return jax.nn.one_hot(out.argmax(-1), self.act_dim, dtype=jnp.float32)

    def logp(self, out: jax.Array, action: jax.Array) -> jax.Array:
        return (self._logp(out) * action).sum(-1)

    def entropy(self, out: jax.Array) -> jax.Array:
        return dists.categorical_entropy(self._logp(out))


class BoundedNormalPolicy:
    """Normal with mean tanh(x) and std in [minstd, maxstd]; the env side clips samples to [-1, 1]."""

    def __init__(self, dims: int, minstd: float = 0.1, maxstd: float = 1.0):
        self.act_dim, self.out_dim = dims, 2 * dims
        self.minstd, self.maxstd = minstd, maxstd

    def sample(self, key: jax.Array, out: jax.Array) -> jax.Array:
        mean, std = dists.bounded_normal(out, self.minstd, self.maxstd)
        return mean + std * jax.random.normal(key, mean.shape)

    def mode(self, out: jax.Array) -> jax.Array:
        return dists.bounded_normal(out, self.minstd, self.maxstd)[0]

    def logp(self, out: jax.Array, action: jax.Array) -> jax.Array:
        mean, std = dists.bounded_normal(out, self.minstd, self.maxstd)
        return dists.normal_logp(mean, std, action)

    def entropy(self, out: jax.Array) -> jax.Array:
        return dists.normal_entropy(dists.bounded_normal(out, self.minstd, self.maxstd)[1])


def head_init(
    key: jax.Array, din: int, units: int, layers: int, out_dim: int, outscale: float, layer: nets.Layer
) -> nets.Params:
    """`outscale` scales the output layer's init (0: zeros, V3's reward and value heads)."""
    k_mlp, k_out = jax.random.split(key)
    return {
        "mlp": nets.mlp_init(k_mlp, din, units, layers, layer),
        "out": nets.linear_init(k_out, units, out_dim, outscale),
    }


def head(p: nets.Params, feat: jax.Array) -> jax.Array:
    """The head's raw output in the compute dtype; the distributions cast it to float32 where the official
    code does (the bounded normal computes its mean and std in the compute dtype, as the official head)."""
    return nets.linear(p["out"], nets.mlp(p["mlp"], feat))
