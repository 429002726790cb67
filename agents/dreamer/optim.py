"""The DreamerV3 optimiser (the 2024 code's, danijar/dreamerv3 @ e3f0224) as an optax chain, chosen by `optimizer.kind`.

'laprop_agc': adaptive gradient clipping per tensor (||g|| <= clip * max(1e-3, ||theta||)), then
RMS normalisation (beta2, eps, bias-corrected), then momentum (beta1, bias-corrected) applied after
normalisation (LaProp), then the learning rate with a linear warm-up from 0.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from agents.dreamer.adam import adam_per_module


def clip_by_agc(clip: float = 0.3, pmin: float = 1e-3) -> optax.GradientTransformation:
    def init_fn(params: Any) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(updates: Any, state: optax.EmptyState, params: Any = None) -> tuple[Any, optax.EmptyState]:
        def clip_one(param: jax.Array, update: jax.Array) -> jax.Array:
            upper = clip * jnp.maximum(pmin, jnp.linalg.norm(param.ravel()))
            return update / jnp.maximum(1.0, jnp.linalg.norm(update.ravel()) / upper)

        return jax.tree.map(clip_one, params, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


class RMSState(NamedTuple):
    step: jax.Array
    nu: Any


def scale_by_rms(beta: float = 0.999, eps: float = 1e-20) -> optax.GradientTransformation:
    def init_fn(params: Any) -> RMSState:
        return RMSState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates: Any, state: RMSState, params: Any = None) -> tuple[Any, RMSState]:
        del params
        step = optax.safe_int32_increment(state.step)
        nu = jax.tree.map(lambda v, u: beta * v + (1.0 - beta) * u * u, state.nu, updates)
        correction = 1.0 - beta ** step.astype(jnp.float32)
        updates = jax.tree.map(lambda u, v: u / (jnp.sqrt(v / correction) + eps), updates, nu)
        return updates, RMSState(step, nu)

    return optax.GradientTransformation(init_fn, update_fn)


class MomentumState(NamedTuple):
    step: jax.Array
    mu: Any


def scale_by_momentum(beta: float) -> optax.GradientTransformation:
    def init_fn(params: Any) -> MomentumState:
        return MomentumState(jnp.zeros((), jnp.int32), jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates: Any, state: MomentumState, params: Any = None) -> tuple[Any, MomentumState]:
        del params
        step = optax.safe_int32_increment(state.step)
        mu = jax.tree.map(lambda m, u: beta * m + (1.0 - beta) * u, state.mu, updates)
        correction = 1.0 - beta ** step.astype(jnp.float32)
        return jax.tree.map(lambda m: m / correction, mu), MomentumState(step, mu)

    return optax.GradientTransformation(init_fn, update_fn)


def laprop_agc(
    lr: float, warmup: int, agc: float, beta1: float, beta2: float, eps: float
) -> optax.GradientTransformation:
    schedule = optax.linear_schedule(0.0, lr, warmup) if warmup else lr
    return optax.chain(
        clip_by_agc(agc),
        scale_by_rms(beta2, eps),
        scale_by_momentum(beta1),
        optax.scale_by_learning_rate(schedule),
    )


OPTIMIZERS = {"laprop_agc": laprop_agc, "adam_per_module": adam_per_module}  # adam: V1, V2, V3 2023


def make_optimizer(cfg: dict) -> optax.GradientTransformation:
    cfg = dict(cfg)
    kind = cfg.pop("kind")
    if kind not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer.kind '{kind}'; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[kind](**cfg)
