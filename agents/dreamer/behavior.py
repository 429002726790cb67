"""Actor-critic learning in imagination (the DreamerV3 paper, arXiv:2301.04104, and danijar/dreamerv3 @
e3f0224): rollouts, lambda-returns, return normalisation,
the REINFORCE or dynamics-backprop policy loss, the critic with its slow regulariser, and the replay
value loss.

Losses come back per trajectory entry, shape (N, H) for imagination and (B, T - 1) for replay; the
caller averages them and applies the loss scales.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

sg = jax.lax.stop_gradient


def lambda_return(
    last: jax.Array, term: jax.Array, rew: jax.Array, boot: jax.Array, disc: float, lam: float
) -> jax.Array:
    """R_t = r_{t+1} + live_{t+1} * ((1 - l) * boot_{t+1} + l * R_{t+1}) with R_T = boot_T, where
    live = disc * (1 - term) and l = lam * (1 - last). Inputs (N, T + 1); returns (N, T)."""
    live = (1.0 - term[:, 1:]) * disc
    cont = (1.0 - last[:, 1:]) * lam
    interm = rew[:, 1:] + (1.0 - cont) * live * boot[:, 1:]

    def body(ret, xs):
        interm_t, live_t, cont_t = xs
        ret = interm_t + live_t * cont_t * ret
        return ret, ret

    xs = (interm.T, live.T, cont.T)
    _, rets = jax.lax.scan(body, boot[:, -1], xs, reverse=True)
    return rets.T


def retnorm_init() -> dict[str, jax.Array]:
    return {"lo": jnp.zeros((), jnp.float32), "hi": jnp.zeros((), jnp.float32)}


def retnorm_update(
    state: dict[str, jax.Array], ret: jax.Array, rate: float = 0.01, lo: float = 5.0, hi: float = 95.0
) -> dict[str, jax.Array]:
    """EMA (decay 1 - rate) of the batch's 5th and 95th return percentiles."""
    ret = sg(ret.astype(jnp.float32))
    return {
        "lo": (1.0 - rate) * state["lo"] + rate * jnp.percentile(ret, lo),
        "hi": (1.0 - rate) * state["hi"] + rate * jnp.percentile(ret, hi),
    }


def retnorm_scale(state: dict[str, jax.Array], limit: float = 1.0) -> jax.Array:
    """S = max(limit, P95 - P5): returns are divided by S, never scaled up."""
    return sg(jnp.maximum(limit, state["hi"] - state["lo"]))


def imagine(
    start: dict[str, jax.Array],
    policy: Callable[[dict, jax.Array], jax.Array],
    img_step: Callable[[dict, jax.Array, jax.Array], dict],
    horizon: int,
    key: jax.Array,
) -> tuple[dict[str, jax.Array], jax.Array]:
    """Roll the policy forward from `start` (leaves (N, ...)) for `horizon` steps.

    Returns states with leaves (N, horizon + 1, ...) (the start first) and the action taken in each of
    them (N, horizon + 1, A), the last one sampled but never executed.
    """

    def body(state, k):
        k_act, k_step = jax.random.split(k)
        action = policy(state, k_act)
        return img_step(state, action, k_step), (state, action)

    keys = jax.random.split(key, horizon + 1)
    last, (states, actions) = jax.lax.scan(body, start, keys[:-1])
    last_action = policy(last, keys[-1])
    states = jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[None]], 0), states, last)
    actions = jnp.concatenate([actions, last_action[None]], 0)
    swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
    return jax.tree.map(swap, states), swap(actions)


def imagination_losses(
    rew: jax.Array,
    con: jax.Array,
    boot: jax.Array,
    val_loss: Callable[[jax.Array], jax.Array],
    slow_val: jax.Array,
    logpi: jax.Array,
    entropy: jax.Array,
    retnorm: dict[str, jax.Array],
    lam: float,
    actent: float,
    slowreg: float,
    retnorm_cfg: dict,
    backprop: bool,
    backprop_baseline: bool,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array], jax.Array, dict[str, jax.Array]]:
    """Policy and critic losses on imagined trajectories of shape (N, H + 1).

    `con` is the continue probability times the discount; `boot` the values of the critic that
    bootstraps the lambda-returns and is the baseline (online or slow); `val_loss(target)` is the trained
    critic's loss against a (N, H + 1) target. REINFORCE weighs `logpi` with the normalised advantage;
    dynamics backprop (`backprop`) maximises the normalised return itself, whose gradient reaches the
    actor through `rew`, `con` and `boot`, less the baseline with `backprop_baseline`. Returns (losses,
    new retnorm state, the lambda-returns (N, H), and diagnostics named after the official metrics)."""
    weight = sg(jnp.cumprod(con, 1))
    ret = lambda_return(jnp.zeros_like(con), 1.0 - con, rew, boot, 1.0, lam)
    retnorm = retnorm_update(retnorm, ret, retnorm_cfg["rate"], retnorm_cfg["lo"], retnorm_cfg["hi"])
    scale = retnorm_scale(retnorm, retnorm_cfg["limit"])
    adv = (ret - boot[:, :-1]) / scale
    if backprop:
        objective = adv if backprop_baseline else ret / scale
    else:
        objective = logpi[:, :-1] * sg(adv)
    policy = -weight[:, :-1] * (objective + actent * entropy[:, :-1])
    target = jnp.concatenate([sg(ret), jnp.zeros_like(ret[:, -1:])], 1)
    value = weight[:, :-1] * (val_loss(target) + slowreg * val_loss(sg(slow_val)))[:, :-1]
    stats = {"imag_rew": rew.mean(), "imag_con": con.mean(), "imag_weight": weight.mean(),
             "adv": adv.mean(), "adv_std": adv.std(), "adv_mag": jnp.abs(adv).mean()}
    return {"policy": policy, "value": value}, retnorm, ret, sg(stats)


def replay_value_loss(
    last: jax.Array,
    term: jax.Array,
    rew: jax.Array,
    boot: jax.Array,
    val_loss: Callable[[jax.Array], jax.Array],
    slow_val: jax.Array,
    disc: float,
    lam: float,
    slowreg: float,
) -> jax.Array:
    """Critic loss on the replayed sequence (B, T): lambda-returns over real rewards and terminals,
    bootstrapped at every step with the imagination return started there (`boot`)."""
    ret = lambda_return(last, term, rew, boot, disc, lam)
    target = jnp.concatenate([ret, jnp.zeros_like(ret[:, -1:])], 1)
    weight = 1.0 - last
    return weight[:, :-1] * (val_loss(sg(target)) + slowreg * val_loss(sg(slow_val)))[:, :-1]
