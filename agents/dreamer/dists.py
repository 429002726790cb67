"""Distributions and transforms of DreamerV3: symlog, twohot bins, categoricals, bounded normal.

All functions take float32 arrays; event axes are the trailing ones named in each docstring.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

sg = jax.lax.stop_gradient


def symlog(x: jax.Array) -> jax.Array:
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x: jax.Array) -> jax.Array:
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


# ----- twohot over symexp-spaced bins (reward and value heads) -------------------------------------


def twohot_bins(num: int = 255, limit: float = 20.0) -> jax.Array:
    """symexp(linspace(-limit, limit, num)), built from one half so the grid is exactly symmetric."""
    if num % 2 != 1:
        raise ValueError(f"twohot needs an odd number of bins, got {num}")
    half = symexp(jnp.linspace(-limit, 0.0, (num - 1) // 2 + 1))
    return jnp.concatenate([half, -half[:-1][::-1]])


def twohot_encode(target: jax.Array, bins: jax.Array) -> jax.Array:
    """Weights on the two bins around each target (in raw value space), summing to 1: (...,) -> (..., K)."""
    n = bins.shape[0]
    below = jnp.clip((bins <= target[..., None]).sum(-1) - 1, 0, n - 1)
    above = jnp.clip(n - (bins > target[..., None]).sum(-1), 0, n - 1)
    equal = below == above
    to_below = jnp.where(equal, 1.0, jnp.abs(bins[below] - target))
    to_above = jnp.where(equal, 1.0, jnp.abs(bins[above] - target))
    total = to_below + to_above
    return (
        jax.nn.one_hot(below, n) * (to_above / total)[..., None]
        + jax.nn.one_hot(above, n) * (to_below / total)[..., None]
    )


def twohot_loss(logits: jax.Array, target: jax.Array, bins: jax.Array) -> jax.Array:
    """Cross-entropy between the predicted bin distribution and the twohot target: (..., K) -> (...)."""
    weights = twohot_encode(sg(target.astype(jnp.float32)), bins)
    return -(weights * jax.nn.log_softmax(logits.astype(jnp.float32))).sum(-1)


def twohot_mean(logits: jax.Array, bins: jax.Array) -> jax.Array:
    """Expected value, summed outside-in from both ends so uniform probabilities give exactly 0."""
    probs = jax.nn.softmax(logits.astype(jnp.float32))
    m = (bins.shape[0] - 1) // 2
    left = (probs[..., :m] * bins[:m])[..., ::-1]
    right = probs[..., m + 1 :] * bins[m + 1 :]
    return probs[..., m] * bins[m] + (left + right).sum(-1)


# ----- categoricals --------------------------------------------------------------------------------


def unimix_logits(logits: jax.Array, unimix: float) -> jax.Array:
    """Log-probabilities of (1 - unimix) * softmax(logits) + unimix * uniform."""
    if not unimix:  # log_softmax stays finite where a saturated softmax underflows to 0 (V1/V2 use no mix)
        return jax.nn.log_softmax(logits.astype(jnp.float32))
    probs = jax.nn.softmax(logits.astype(jnp.float32))
    return jnp.log((1.0 - unimix) * probs + unimix / logits.shape[-1])


def onehot_sample(key: jax.Array, logprobs: jax.Array) -> jax.Array:
    """One-hot sample with straight-through gradients to the probabilities: (..., K) -> (..., K)."""
    index = jax.random.categorical(key, logprobs)
    onehot = jax.nn.one_hot(index, logprobs.shape[-1], dtype=jnp.float32)
    probs = jnp.exp(logprobs)
    return onehot + probs - sg(probs)


def categorical_kl(logp: jax.Array, logq: jax.Array) -> jax.Array:
    """KL(p || q) of categoricals given log-probabilities: (..., K) -> (...)."""
    return (jnp.exp(logp) * (logp - logq)).sum(-1)


def categorical_entropy(logp: jax.Array) -> jax.Array:
    return -(jnp.exp(logp) * logp).sum(-1)


# ----- Bernoulli (continue head) -------------------------------------------------------------------


def binary_loss(logit: jax.Array, target: jax.Array) -> jax.Array:
    """Cross-entropy with a soft target in [0, 1]."""
    logit = logit.astype(jnp.float32)
    return -(target * jax.nn.log_sigmoid(logit) + (1.0 - target) * jax.nn.log_sigmoid(-logit))


# ----- policy distributions ------------------------------------------------------------------------


def bounded_normal(out: jax.Array, minstd: float = 0.1, maxstd: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Mean tanh(x) and std (maxstd - minstd) * sigmoid(s + 2) + minstd from a (..., 2A) output, in float32.

    The official head computes both in the compute dtype. The mean's tanh is one op, rounded once to
    bfloat16 here as there (bit-equal); the std's chain of four ops rounds as each XLA fuses it, and
    float32 is nearer the official std (measured, bfloat16: 6.6e-4 relative vs 1.6e-3 in bfloat16)."""
    x, s = jnp.split(out, 2, -1)
    std = (maxstd - minstd) * jax.nn.sigmoid(s.astype(jnp.float32) + 2.0) + minstd
    return jnp.tanh(x).astype(jnp.float32), std


def normal_logp(mean: jax.Array, std: jax.Array, x: jax.Array) -> jax.Array:
    """Log-density of a diagonal normal, summed over the last axis."""
    z = (x - mean) / std
    return (-0.5 * jnp.square(z) - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)


def normal_entropy(std: jax.Array) -> jax.Array:
    return (0.5 * jnp.log(2 * jnp.pi * jnp.e) + jnp.log(std)).sum(-1)
