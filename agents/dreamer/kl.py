"""The world model's KL terms, with the two ways of granting free nats (danijar/dreamerv3 @ e3f0224,
danijar/dreamerv2 @ 07d906e, danijar/dreamer @ 56d4d44).

dyn = KL(sg(post) || prior) trains the prior, rep = KL(post || sg(prior)) the posterior; their loss
scales set the balance: V3 dyn 1.0 / rep 0.1 (2023: 0.5 / 0.1), V2 `balance 0.8` = dyn 0.8 / rep 0.2
times the KL scale, V1's plain KL(post || prior) = dyn 1.0 / rep 1.0 (same gradient, twice the value).
- free bits (`free_avg: false`, V3): each (batch, time) entry is clipped below at `free` nats;
- free nats (`free_avg: true`, V1/V2): the batch mean is clipped, so no gradient flows while the mean
  KL is below `free` (V1 3.0 nats, V2 1.0 on DMC, 0 elsewhere).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

sg = jax.lax.stop_gradient


def kl_losses(
    kl: Callable[[jax.Array, jax.Array], jax.Array], post: jax.Array, prior: jax.Array, free: float, free_avg: bool
) -> dict[str, jax.Array]:
    """{'dyn', 'rep'}: per-entry losses of shape (B, T), or scalars with `free_avg`."""
    dyn, rep = kl(sg(post), prior), kl(post, sg(prior))
    if free_avg:
        dyn, rep = dyn.mean(), rep.mean()
    return {"dyn": jnp.maximum(free, dyn), "rep": jnp.maximum(free, rep)}
