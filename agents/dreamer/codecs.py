"""Observation encoder and decoder of DreamerV3 (spec §1.3).

Vector keys: symlog, concatenated, then an MLP; their decoder predicts symlog(x) with a squared error
summed over the key's dims. Image keys (uint8 HxWxC): x/255 - 0.5, four stages of
[5x5 conv -> 2x2 max-pool -> RMSNorm -> SiLU] with channels depth * (2, 3, 4, 4); the decoder mirrors it
with nearest upsampling and ends in a sigmoid, squared error summed over pixels.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from agents.base import LOOP_KEYS
from agents.dreamer import nets
from agents.dreamer.dists import symlog

MULTS = (2, 3, 4, 4)
KERNEL = 5
DECODER_BLOCKS = 8  # `bspace`: the deter part of the decoder's first layer is block-diagonal


def obs_spec(space: gym.spaces.Dict) -> dict[str, tuple[str, Any]]:
    """What the networks see of each observation key: ('image', (H, W, C)) or ('vector', shape)."""
    spec: dict[str, tuple[str, Any]] = {}
    for key, sub in space.spaces.items():
        if key in LOOP_KEYS or key.startswith("log/"):
            continue
        if isinstance(sub, gym.spaces.Box) and sub.dtype == np.uint8 and len(sub.shape) == 3:
            spec[key] = ("image", tuple(sub.shape))
        elif isinstance(sub, gym.spaces.Box) and len(sub.shape) <= 2:
            spec[key] = ("vector", tuple(sub.shape))
        else:
            raise ValueError(f"observation '{key}' has an unsupported space {sub}")
    images = {shape[:2] for kind, shape in spec.values() if kind == "image"}
    if len(images) > 1 or any(h % 16 or w % 16 for h, w in images):
        raise ValueError(f"image keys need one common size divisible by 16, got {sorted(images)}")
    return spec


def _split(spec: dict) -> tuple[list[str], list[str]]:
    return [k for k, (kind, _) in spec.items() if kind == "vector"], [
        k for k, (kind, _) in spec.items() if kind == "image"
    ]


def _dim(spec: dict, key: str) -> int:
    return int(np.prod(spec[key][1]))


def _image_shape(spec: dict, imgkeys: list[str]) -> tuple[int, int, int]:
    h, w, _ = spec[imgkeys[0]][1]
    return h, w, sum(spec[k][1][2] for k in imgkeys)


def encoder_out_dim(spec: dict, units: int, depth: int) -> int:
    veckeys, imgkeys = _split(spec)
    dim = units if veckeys else 0
    if imgkeys:
        h, w, _ = _image_shape(spec, imgkeys)
        dim += (h // 16) * (w // 16) * depth * MULTS[-1]
    return dim


def encoder_init(key: jax.Array, spec: dict, units: int, depth: int, layers: int = 3) -> nets.Params:
    veckeys, imgkeys = _split(spec)
    k_mlp, k_conv = jax.random.split(key)
    params: nets.Params = {}
    if veckeys:
        params["mlp"] = nets.mlp_init(k_mlp, sum(_dim(spec, k) for k in veckeys), units, layers)
    if imgkeys:
        channels = [_image_shape(spec, imgkeys)[2]] + [depth * m for m in MULTS]
        keys = jax.random.split(k_conv, len(MULTS))
        params["convs"] = [
            {"conv": nets.conv_init(k, cin, cout, KERNEL), "norm": nets.norm_init(cout)}
            for k, cin, cout in zip(keys, channels[:-1], channels[1:])
        ]
    return params


def encode(p: nets.Params, obs: dict[str, jax.Array], spec: dict, dtype: jnp.dtype) -> jax.Array:
    """Observations with leading axes (...) -> tokens (..., encoder_out_dim)."""
    veckeys, imgkeys = _split(spec)
    outs = []
    if veckeys:
        first = obs[veckeys[0]]
        lead = first.shape[: first.ndim - len(spec[veckeys[0]][1])]
        x = jnp.concatenate([obs[k].reshape(*lead, -1).astype(jnp.float32) for k in veckeys], -1)
        outs.append(nets.mlp(p["mlp"], symlog(x).astype(dtype)))
    if imgkeys:
        x = jnp.concatenate([obs[k] for k in imgkeys], -1).astype(dtype) / 255.0 - 0.5
        for layer in p["convs"]:
            x = nets.conv_pool(layer["conv"], x)
            x = jax.nn.silu(nets.rms_norm(layer["norm"], x))
        outs.append(x.reshape(*x.shape[:-3], -1))
    return jnp.concatenate(outs, -1)


def decoder_init(
    key: jax.Array, spec: dict, deter: int, stoch: int, units: int, depth: int, layers: int = 3
) -> nets.Params:
    veckeys, imgkeys = _split(spec)
    keys = iter(jax.random.split(key, 8 + len(veckeys)))
    params: nets.Params = {}
    if veckeys:
        params["mlp"] = nets.mlp_init(next(keys), deter + stoch, units, layers)
        params["out"] = {k: nets.linear_init(next(keys), units, _dim(spec, k)) for k in veckeys}
    if imgkeys:
        h, w, c = _image_shape(spec, imgkeys)
        first = (h // 16) * (w // 16) * depth * MULTS[-1]
        channels = [depth * m for m in reversed(MULTS)] + [c]  # 4d, 4d, 3d, 2d, C
        convs = jax.random.split(next(keys), len(MULTS))
        params["image"] = {
            "deter": nets.block_linear_init(next(keys), deter, first, DECODER_BLOCKS),
            "stoch": nets.dense_init(next(keys), stoch, 2 * units),
            "stoch_out": nets.linear_init(next(keys), 2 * units, first),
            "norm": nets.norm_init(channels[0]),
            "convs": [nets.conv_init(k, cin, cout, KERNEL) for k, cin, cout in zip(convs, channels[:-1], channels[1:])],
            "norms": [nets.norm_init(cout) for cout in channels[1:-1]],
        }
    return params


def decode_losses(
    p: nets.Params, deter: jax.Array, stoch: jax.Array, obs: dict[str, jax.Array], spec: dict
) -> dict[str, jax.Array]:
    """Reconstruction loss per observation group, each of shape deter.shape[:-1] (float32)."""
    veckeys, imgkeys = _split(spec)
    lead = deter.shape[:-1]
    losses = {}
    if veckeys:
        x = nets.mlp(p["mlp"], jnp.concatenate([deter, stoch], -1))
        for k in veckeys:
            pred = nets.linear(p["out"][k], x).astype(jnp.float32)
            target = symlog(obs[k].reshape(*lead, -1).astype(jnp.float32))
            losses[k] = jnp.square(pred - target).sum(-1)
    if imgkeys:
        q = p["image"]
        h, w, c = _image_shape(spec, imgkeys)
        minh, minw, ch = h // 16, w // 16, q["norm"]["scale"].shape[0]
        x0 = nets.block_linear(q["deter"], deter).reshape(*lead, DECODER_BLOCKS, minh, minw, -1)
        x0 = jnp.moveaxis(x0, -4, -2).reshape(*lead, minh, minw, ch)
        x1 = nets.linear(q["stoch_out"], nets.dense(q["stoch"], stoch)).reshape(*lead, minh, minw, ch)
        x = jax.nn.silu(nets.rms_norm(q["norm"], x0 + x1))
        for conv, norm in zip(q["convs"][:-1], q["norms"]):
            x = jax.nn.silu(nets.rms_norm(norm, nets.upsample_conv(conv, x)))
        pred = jax.nn.sigmoid(nets.upsample_conv(q["convs"][-1], x).astype(jnp.float32))
        target = jnp.concatenate([obs[k] for k in imgkeys], -1).astype(jnp.float32) / 255.0
        losses["image"] = jnp.square(pred - target).sum((-3, -2, -1))
    return losses
