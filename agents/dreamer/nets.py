"""Layers and networks as plain functions over parameter pytrees (nested dicts of arrays).

Every network has an `*_init(key, ...) -> params` and an apply function `f(params, x)`. Parameters are
float32; `cast_params` turns them into the compute dtype (bfloat16 on GPU) once per step, while norms,
losses and distributions stay in float32. Initialisation follows DreamerV3 (`winit: trunc_normal_in`):
truncated normal at +-2 sigma with std 1.1368 * sqrt(1 / fan_in), zero biases; `outscale` scales an
output layer's std (0 gives zeros).

The norm and activation after a linear map or a convolution are chosen per network by a `Layer`
(activation silu | elu | relu, norm rms | layer | none, norm eps): V3 uses Linear -> RMSNorm -> SiLU,
V1/V2 Dense -> ELU without norm, V3-2023 LayerNorm (eps 1e-3) and SiLU. The `Layer` is stored in the
parameters of its norm (`{"layer": Layer, "scale": ..., "offset": ...}`) as a static pytree node: it
holds no arrays, so optimisers and checkpoints see only the arrays, and the apply functions need no
extra argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

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
    """Block-diagonal linear layer: `blocks` independent (din/blocks -> dout/blocks) maps. Its fan-in is
    `din`, the whole input, not a block's: the official initialiser counts the block axis as a kernel's
    spatial extent (embodied/jax/nets.py, Initializer.compute_fans), so each block's weights are
    sqrt(blocks) smaller than a separate layer's."""
    shape = (blocks, din // blocks, dout // blocks)
    return {"w": trunc_normal(key, shape, din), "b": jnp.zeros(dout, jnp.float32)}


def block_matmul(w: jax.Array, x: jax.Array) -> jax.Array:
    """The block-diagonal product without bias, accumulated and returned in float32 (rounded to the compute
    dtype by the caller, once, after any other product it sums with). Group-major batched matmul; on
    XLA:CPU this beats an einsum over a (..., g, i) view by 2-9x."""
    blocks, din, dout = w.shape
    lead = x.shape[:-1]
    x = x.reshape(-1, blocks, din).transpose(1, 0, 2)
    y = jnp.matmul(x, w.astype(x.dtype), preferred_element_type=jnp.float32).transpose(1, 0, 2)
    return y.reshape(*lead, blocks * dout)


def block_linear(p: Params, x: jax.Array) -> jax.Array:
    return block_matmul(p["w"], x).astype(x.dtype) + p["b"].astype(x.dtype)


ACTIVATIONS = {"silu": jax.nn.silu, "elu": jax.nn.elu, "relu": jax.nn.relu}
NORMS = ("rms", "layer", "none")


@jax.tree_util.register_static
@dataclass(frozen=True)
class Layer:
    """The norm and activation after a linear map or convolution (static: no arrays)."""

    act: str = "silu"
    norm: str = "rms"
    eps: float = 1e-4

    def __post_init__(self) -> None:
        if self.act not in ACTIVATIONS:
            raise ValueError(f"unknown activation '{self.act}'; valid: {', '.join(ACTIVATIONS)}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm '{self.norm}'; valid: {', '.join(NORMS)}")


V3_LAYER = Layer("silu", "rms", 1e-4)


def rms_norm(p: Params, x: jax.Array, eps: float = 1e-4) -> jax.Array:
    """RMSNorm over the last axis with a learned scale, computed in float32."""
    x32 = x.astype(jnp.float32)
    y = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), -1, keepdims=True) + eps)
    return (y * p["scale"].astype(jnp.float32)).astype(x.dtype)


def layer_norm(p: Params, x: jax.Array, eps: float) -> jax.Array:
    """LayerNorm over the last axis with learned scale and offset, computed in float32."""
    x32 = x.astype(jnp.float32)
    mean = x32.mean(-1, keepdims=True)
    var = jnp.square(x32 - mean).mean(-1, keepdims=True)
    y = (x32 - mean) * jax.lax.rsqrt(var + eps)
    return (y * p["scale"].astype(jnp.float32) + p["offset"].astype(jnp.float32)).astype(x.dtype)


def norm_init(dim: int, layer: Layer = V3_LAYER) -> Params:
    """The norm's parameters (none for norm 'none') with the static `Layer` that applies them."""
    params: Params = {"layer": layer}
    if layer.norm in ("rms", "layer"):
        params["scale"] = jnp.ones(dim, jnp.float32)
    if layer.norm == "layer":
        params["offset"] = jnp.zeros(dim, jnp.float32)
    return params


def norm_act(p: Params, x: jax.Array) -> jax.Array:
    """The norm, then the activation, of the `Layer` stored in `p`."""
    layer = p["layer"]
    if layer.norm == "rms":
        x = rms_norm(p, x, layer.eps)
    elif layer.norm == "layer":
        x = layer_norm(p, x, layer.eps)
    return ACTIVATIONS[layer.act](x)


def dense_init(key: jax.Array, din: int, dout: int, layer: Layer = V3_LAYER) -> Params:
    """Linear -> norm -> activation (V3: RMSNorm, SiLU), the building block of every MLP."""
    return {"lin": linear_init(key, din, dout), "norm": norm_init(dout, layer)}


def dense(p: Params, x: jax.Array) -> jax.Array:
    return norm_act(p["norm"], linear(p["lin"], x))


def mlp_init(key: jax.Array, din: int, units: int, layers: int, layer: Layer = V3_LAYER) -> list[Params]:
    keys = jax.random.split(key, layers)
    return [dense_init(k, din if i == 0 else units, units, layer) for i, k in enumerate(keys)]


def mlp(p: list[Params], x: jax.Array) -> jax.Array:
    for layer in p:
        x = dense(layer, x)
    return x


def conv_init(key: jax.Array, cin: int, cout: int, kernel: int) -> Params:
    fan_in = kernel * kernel * cin
    return {"w": trunc_normal(key, (kernel, kernel, cin, cout), fan_in), "b": jnp.zeros(cout, jnp.float32)}


def _phase_taps(kernel: int) -> np.ndarray:
    """S[p, a, q, d] = 1 where full-resolution tap d of output phase p reads input phase q at low-resolution
    offset a - 1 (2x2 phases; a 'same' k x k conv becomes a 3 x 3 conv between phase stacks)."""
    r = kernel // 2
    taps = np.zeros((2, 3, 2, kernel), np.float32)
    for p, d in np.ndindex(2, kernel):
        a, q = divmod(p + d - r, 2)
        if not -1 <= a <= 1:
            raise ValueError(f"kernel {kernel} reaches beyond one low-resolution pixel")
        taps[p, a + 1, q, d] = 1.0
    return taps


def _conv3(x: jax.Array, w: jax.Array) -> jax.Array:
    lead = x.shape[:-3]
    y = jax.lax.conv_general_dilated(
        x.reshape(-1, *x.shape[-3:]), w.astype(x.dtype), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    return y.reshape(*lead, *y.shape[1:])


def conv_pool(p: Params, x: jax.Array) -> jax.Array:
    """'Same' k x k convolution then 2x2 max-pool, on NHWC images with any leading axes.

    Computed on the space-to-depth image: a 3x3 conv from the 4 input phases to the 4 output phases,
    then a max over the output phases. Same result as conv + pool; XLA:CPU runs it 2-3x faster because
    the channel counts of small models (3 -> 8 at size 1m) become 4x larger."""
    *lead, h, w, c = x.shape
    taps = jnp.asarray(_phase_taps(p["w"].shape[0]))
    kernel = jnp.einsum("payd,qbxe,deio->abyxipqo", taps, taps, p["w"])  # out phases (p, q), in (y, x)
    kernel = kernel.reshape(3, 3, 4 * c, 4 * p["w"].shape[-1])
    x = x.reshape(*lead, h // 2, 2, w // 2, 2, c)
    x = jnp.moveaxis(x, -4, -3).reshape(*lead, h // 2, w // 2, 4 * c)
    y = _conv3(x, kernel).reshape(*lead, h // 2, w // 2, 4, -1).max(-2)
    return y + p["b"].astype(y.dtype)


def upsample_conv(p: Params, x: jax.Array) -> jax.Array:
    """Nearest 2x upsampling then a 'same' k x k convolution, on NHWC images with any leading axes.

    Computed as a 3x3 conv at the low resolution to the 4 output phases, then depth-to-space: the same
    result with 25/9 fewer multiplications for k = 5."""
    *lead, h, w, _ = x.shape
    taps = jnp.asarray(_phase_taps(p["w"].shape[0]).sum(2))  # upsampled input: every phase is the same pixel
    kernel = jnp.einsum("pad,qbe,deio->abipqo", taps, taps, p["w"])
    cout = p["w"].shape[-1]
    kernel = kernel.reshape(3, 3, -1, 4 * cout)
    y = _conv3(x, kernel).reshape(*lead, h, w, 2, 2, cout)
    y = jnp.moveaxis(y, -3, -4).reshape(*lead, 2 * h, 2 * w, cout)
    return y + p["b"].astype(y.dtype)


def _images(f, x: jax.Array) -> jax.Array:
    """Apply `f` to NHWC images with any leading axes."""
    lead = x.shape[:-3]
    y = f(x.reshape(-1, *x.shape[-3:]))
    return y.reshape(*lead, *y.shape[1:])


def conv(p: Params, x: jax.Array, stride: int = 1, padding: str = "SAME") -> jax.Array:
    """Plain k x k convolution: stride 2 for the strided encoders ('VALID' padding V1/V2, 'SAME'
    V3-2023); stride 1 'SAME' is the reference the tests check the fast forms above against."""
    f = partial(jax.lax.conv_general_dilated, rhs=p["w"].astype(x.dtype), window_strides=(stride, stride),
                padding=padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return _images(f, x) + p["b"].astype(x.dtype)


def conv_transpose(p: Params, x: jax.Array, padding: str) -> jax.Array:
    """Transposed k x k convolution with stride 2: n pixels become 2n ('SAME') or 2n + k - 2 ('VALID')."""
    f = partial(jax.lax.conv_transpose, rhs=p["w"].astype(x.dtype), strides=(2, 2), padding=padding,
                dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return _images(f, x) + p["b"].astype(x.dtype)


def max_pool2(x: jax.Array) -> jax.Array:
    """2x2 max-pool with stride 2 on NHWC images (any leading batch axes)."""
    *lead, h, w, c = x.shape
    return x.reshape(*lead, h // 2, 2, w // 2, 2, c).max(axis=(-4, -2))


def upsample2(x: jax.Array) -> jax.Array:
    """Nearest-neighbour 2x upsampling on NHWC images."""
    return jnp.repeat(jnp.repeat(x, 2, axis=-3), 2, axis=-2)
