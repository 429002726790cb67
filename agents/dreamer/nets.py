"""Layers and networks as plain functions over parameter pytrees (nested dicts of arrays).

Every network has an `*_init(key, ...) -> params` and an apply function `f(params, x)`. Parameters are
float32; `cast_params` turns them into the compute dtype (bfloat16 on GPU) once per step, while norms,
losses and distributions stay in float32. Initialisation follows DreamerV3 (`winit: trunc_normal_in`):
truncated normal at +-2 sigma with std 1.1368 * sqrt(1 / fan_in), zero biases; `outscale` scales an
output layer's std (0 gives zeros).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Params = dict


def trunc_normal(key: jax.Array, shape: tuple[int, ...], fan_in: int, outscale: float = 1.0) -> jax.Array:
    std = 1.1368 * math.sqrt(1.0 / fan_in) * outscale
    if std == 0.0:
        return jnp.zeros(shape, jnp.float32)
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, jnp.float32) * std


def cast_params(params: Params, dtype: jnp.dtype) -> Params:
    return jax.tree.map(lambda p: p.astype(dtype), params)


# ----- layers -------------------------------------------------------------------------------------


def linear_init(key: jax.Array, din: int, dout: int, outscale: float = 1.0) -> Params:
    return {"w": trunc_normal(key, (din, dout), din, outscale), "b": jnp.zeros(dout, jnp.float32)}


def linear(p: Params, x: jax.Array) -> jax.Array:
    return x @ p["w"].astype(x.dtype) + p["b"].astype(x.dtype)


def block_linear_init(key: jax.Array, din: int, dout: int, blocks: int) -> Params:
    """Block-diagonal linear layer: `blocks` independent (din/blocks -> dout/blocks) maps."""
    shape = (blocks, din // blocks, dout // blocks)
    return {"w": trunc_normal(key, shape, din // blocks), "b": jnp.zeros(dout, jnp.float32)}


def block_linear(p: Params, x: jax.Array) -> jax.Array:
    blocks, din, dout = p["w"].shape
    x = x.reshape(*x.shape[:-1], blocks, din)
    y = jnp.einsum("...gi,gio->...go", x, p["w"].astype(x.dtype))
    return y.reshape(*y.shape[:-2], blocks * dout) + p["b"].astype(x.dtype)


def norm_init(dim: int) -> Params:
    return {"scale": jnp.ones(dim, jnp.float32)}


def rms_norm(p: Params, x: jax.Array, eps: float = 1e-4) -> jax.Array:
    """RMSNorm over the last axis with a learned scale, computed in float32."""
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), -1, keepdims=True) + eps)
    return (y * p["scale"].astype(jnp.float32)).astype(x.dtype)


def dense_init(key: jax.Array, din: int, dout: int) -> Params:
    """Linear -> RMSNorm -> SiLU, the building block of every MLP."""
    return {"lin": linear_init(key, din, dout), "norm": norm_init(dout)}


def dense(p: Params, x: jax.Array) -> jax.Array:
    return jax.nn.silu(rms_norm(p["norm"], linear(p["lin"], x)))


def mlp_init(key: jax.Array, din: int, units: int, layers: int) -> list[Params]:
    keys = jax.random.split(key, layers)
    return [dense_init(k, din if i == 0 else units, units) for i, k in enumerate(keys)]


def mlp(p: list[Params], x: jax.Array) -> jax.Array:
    for layer in p:
        x = dense(layer, x)
    return x


def conv_init(key: jax.Array, cin: int, cout: int, kernel: int) -> Params:
    fan_in = kernel * kernel * cin
    return {"w": trunc_normal(key, (kernel, kernel, cin, cout), fan_in), "b": jnp.zeros(cout, jnp.float32)}


def conv(p: Params, x: jax.Array) -> jax.Array:
    """Stride-1 'same' convolution on NHWC images (any leading batch axes)."""
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:])
    y = jax.lax.conv_general_dilated(
        x, p["w"].astype(x.dtype), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    y = y + p["b"].astype(x.dtype)
    return y.reshape(*lead, *y.shape[1:])


def max_pool2(x: jax.Array) -> jax.Array:
    """2x2 max-pool with stride 2 on NHWC images (any leading batch axes)."""
    *lead, h, w, c = x.shape
    return x.reshape(*lead, h // 2, 2, w // 2, 2, c).max(axis=(-4, -2))


def upsample2(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling on NHWC images."""
    return jnp.repeat(jnp.repeat(x, 2, axis=-3), 2, axis=-2)
