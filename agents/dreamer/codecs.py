"""Observation encoder and decoder (danijar/dreamerv3 @ e3f0224; V3-2023 danijar/dreamerv3 @ 8fa35f8, V2
danijar/dreamerv2 @ 07d906e, V1 danijar/dreamer @ 56d4d44).

Vector keys: symlog, concatenated, then an MLP of `mlp_layers` dense layers of `mlp_units`; their decoder
predicts symlog(x) with a squared error summed over the key's dims. Image keys (uint8 HxWxC) are
concatenated on channels and scaled to x/255 - 0.5, then take one of three layouts (`codec.image`):

- `v3` (V3 2024): four stages of [5x5 conv -> 2x2 max-pool -> norm -> act] with channels
  depth * (2, 3, 4, 4); the decoder mirrors it with nearest upsampling and ends in a sigmoid compared
  with x/255, squared error summed over pixels.
- `strided` (V1, V2): four [4x4 conv stride 2 'VALID' -> norm -> act] with channels depth * (1, 2, 4, 8)
  (64x64 -> 31 -> 14 -> 6 -> 2x2x8d = 32d features). Decoder: Linear(features -> 32d) as a 1x1 image,
  then transposed convs stride 2 'VALID' with kernels 5, 5, 6, 6 and channels 4d, 2d, d, C
  (1 -> 5 -> 13 -> 30 -> 64). The output is the mean of a unit Normal over x/255 - 0.5; the loss is its
  negative log-density without the constant: 0.5 * squared error summed over pixels.
- `strided_same` (V3-2023): four [4x4 conv stride 2 'SAME' -> norm -> act], channels depth * (1, 2, 4, 8)
  (64x64 -> 4x4x8d). Decoder: Linear(features -> 4x4x8d), then transposed convs k4 stride 2 'SAME' with
  channels 4d, 2d, d, C; output + 0.5 compared with x/255 (the same as the output with x/255 - 0.5),
  squared error summed over pixels.

Every conv but the decoder's last is followed by the `conv` Layer's norm and activation; the decoders'
first Linear of the strided layouts has none (as in V1, V2 and the V3-2023 code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from agents.base import LOOP_KEYS
from agents.dreamer import nets
from agents.dreamer.dists import symlog

MULTS = (2, 3, 4, 4)  # v3 layout
KERNEL = 5
DECODER_BLOCKS = 8  # `bspace`: the deter part of the v3 decoder's first layer is block-diagonal
STRIDED_MULTS = (1, 2, 4, 8)


@jax.tree_util.register_static
@dataclass(frozen=True)
class ImageLayout:
    """How images are encoded and decoded; stored (static, no arrays) in the codec's parameters."""

    name: str
    padding: str = ""  # strided layouts: 'VALID' (V1/V2) or 'SAME' (V3-2023)
    kernels: tuple[int, ...] = ()  # the strided decoder's transposed-conv kernels
    loss_scale: float = 1.0  # 0.5: unit-Normal pixel likelihood (V1/V2); 1: squared error


LAYOUTS = {
    "v3": ImageLayout("v3"),
    "strided": ImageLayout("strided", "VALID", (5, 5, 6, 6), 0.5),
    "strided_same": ImageLayout("strided_same", "SAME", (4, 4, 4, 4), 1.0),
}


@dataclass(frozen=True)
class CodecConfig:
    depth: int  # CNN base channels
    units: int  # vector MLP width (and the v3 image decoder's stoch branch: 2 * units)
    layers: int = 3  # vector MLP depth
    image: str = "v3"
    dense: nets.Layer = nets.V3_LAYER  # the MLPs' norm and activation
    conv: nets.Layer = nets.V3_LAYER  # the convs' norm and activation

    def __post_init__(self) -> None:
        if self.image not in LAYOUTS:
            raise ValueError(f"unknown codec.image '{self.image}'; valid: {', '.join(LAYOUTS)}")

    @staticmethod
    def from_agent(cfg: dict[str, Any]) -> CodecConfig:
        """From a resolved agent config: `codec`, `layers`, `units` and `depth`."""
        c, layers = cfg["codec"], cfg["layers"]
        return CodecConfig(
            depth=cfg["depth"], units=c["mlp_units"] or cfg["units"], layers=c["mlp_layers"], image=c["image"],
            dense=nets.Layer(**layers), conv=nets.Layer(c["conv_act"], layers["norm"], layers["eps"]),
        )


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


def _image_shape(spec: dict, imgkeys: list[str], cfg: CodecConfig) -> tuple[int, int, int]:
    h, w, _ = spec[imgkeys[0]][1]
    if cfg.image == "strided" and (h, w) != (64, 64):
        raise ValueError(f"codec.image 'strided' (V1/V2) decodes 64x64 images only, got {h}x{w}")
    return h, w, sum(spec[k][1][2] for k in imgkeys)


def _image_features(h: int, w: int, cfg: CodecConfig) -> tuple[int, int, int]:
    """The encoder's last feature map (height, width, channels) for an h x w image."""
    if cfg.image == "v3":
        return h // 16, w // 16, cfg.depth * MULTS[-1]
    if cfg.image == "strided":
        for _ in STRIDED_MULTS:
            h, w = (h - 4) // 2 + 1, (w - 4) // 2 + 1
        return h, w, cfg.depth * STRIDED_MULTS[-1]
    return h // 16, w // 16, cfg.depth * STRIDED_MULTS[-1]


def encoder_out_dim(spec: dict, cfg: CodecConfig) -> int:
    veckeys, imgkeys = _split(spec)
    dim = cfg.units if veckeys else 0
    if imgkeys:
        h, w, _ = _image_shape(spec, imgkeys, cfg)
        dim += int(np.prod(_image_features(h, w, cfg)))
    return dim


def encoder_init(key: jax.Array, spec: dict, cfg: CodecConfig) -> nets.Params:
    veckeys, imgkeys = _split(spec)
    k_mlp, k_conv = jax.random.split(key)
    params: nets.Params = {}
    if veckeys:
        din = sum(_dim(spec, k) for k in veckeys)
        params["mlp"] = nets.mlp_init(k_mlp, din, cfg.units, cfg.layers, cfg.dense)
    if imgkeys:
        mults, kernel = (MULTS, KERNEL) if cfg.image == "v3" else (STRIDED_MULTS, 4)
        channels = [_image_shape(spec, imgkeys, cfg)[2]] + [cfg.depth * m for m in mults]
        keys = jax.random.split(k_conv, len(mults))
        params["convs"] = [
            {"conv": nets.conv_init(k, cin, cout, kernel), "norm": nets.norm_init(cout, cfg.conv)}
            for k, cin, cout in zip(keys, channels[:-1], channels[1:])
        ]
        params["layout"] = LAYOUTS[cfg.image]
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
        layout = p["layout"]
        x = jnp.concatenate([obs[k] for k in imgkeys], -1).astype(dtype) / 255.0 - 0.5
        for layer in p["convs"]:
            if layout.name == "v3":
                x = nets.conv_pool(layer["conv"], x)
            else:
                x = nets.conv(layer["conv"], x, 2, layout.padding)
            x = nets.norm_act(layer["norm"], x)
        outs.append(x.reshape(*x.shape[:-3], -1))
    return jnp.concatenate(outs, -1)


def decoder_init(key: jax.Array, spec: dict, deter: int, stoch: int, cfg: CodecConfig) -> nets.Params:
    veckeys, imgkeys = _split(spec)
    keys = iter(jax.random.split(key, 8 + len(veckeys)))
    params: nets.Params = {}
    if veckeys:
        params["mlp"] = nets.mlp_init(next(keys), deter + stoch, cfg.units, cfg.layers, cfg.dense)
        params["out"] = {k: nets.linear_init(next(keys), cfg.units, _dim(spec, k)) for k in veckeys}
    if imgkeys:
        h, w, c = _image_shape(spec, imgkeys, cfg)
        init = _v3_image_decoder_init if cfg.image == "v3" else _strided_image_decoder_init
        params["image"] = init(keys, h, w, c, deter, stoch, cfg)
        params["layout"] = LAYOUTS[cfg.image]
    return params


def _v3_image_decoder_init(keys, h: int, w: int, c: int, deter: int, stoch: int, cfg: CodecConfig) -> nets.Params:
    first = (h // 16) * (w // 16) * cfg.depth * MULTS[-1]
    channels = [cfg.depth * m for m in reversed(MULTS)] + [c]  # 4d, 4d, 3d, 2d, C
    convs = jax.random.split(next(keys), len(MULTS))
    return {
        "deter": nets.block_linear_init(next(keys), deter, first, DECODER_BLOCKS),
        "stoch": nets.dense_init(next(keys), stoch, 2 * cfg.units, cfg.dense),
        "stoch_out": nets.linear_init(next(keys), 2 * cfg.units, first),
        "norm": nets.norm_init(channels[0], cfg.conv),
        "convs": [nets.conv_init(k, cin, cout, KERNEL) for k, cin, cout in zip(convs, channels[:-1], channels[1:])],
        "norms": [nets.norm_init(cout, cfg.conv) for cout in channels[1:-1]],
    }


def _strided_image_decoder_init(keys, h: int, w: int, c: int, deter: int, stoch: int, cfg: CodecConfig) -> nets.Params:
    layout = LAYOUTS[cfg.image]
    start = (1, 1, 32 * cfg.depth) if layout.padding == "VALID" else (h // 16, w // 16, 8 * cfg.depth)
    channels = [start[2]] + [cfg.depth * m for m in (4, 2, 1)] + [c]
    convs = jax.random.split(next(keys), len(layout.kernels))
    return {
        "in": nets.linear_init(next(keys), deter + stoch, int(np.prod(start))),
        "convs": [
            nets.conv_init(k, cin, cout, kernel)
            for k, cin, cout, kernel in zip(convs, channels[:-1], channels[1:], layout.kernels)
        ],
        "norms": [nets.norm_init(cout, cfg.conv) for cout in channels[1:-1]],
    }


def decode_image(p: nets.Params, deter: jax.Array, stoch: jax.Array, spec: dict) -> jax.Array:
    """The predicted image (..., H, W, C) on the scale of x/255 (float32)."""
    layout, imgkeys = p["layout"], _split(spec)[1]
    h, w, _ = spec[imgkeys[0]][1]
    if layout.name == "v3":
        return _v3_decode_image(p["image"], deter, stoch, h, w)
    return _strided_decode_image(p["image"], jnp.concatenate([deter, stoch], -1), layout, h, w) + 0.5


def _v3_decode_image(q: nets.Params, deter: jax.Array, stoch: jax.Array, h: int, w: int) -> jax.Array:
    """The v3 decoder's sigmoid image in [0, 1], float32 (the sigmoid in the compute dtype, as official)."""
    lead, (minh, minw) = deter.shape[:-1], (h // 16, w // 16)
    ch = q["stoch_out"]["b"].shape[0] // (minh * minw)
    x0 = nets.block_linear(q["deter"], deter).reshape(*lead, DECODER_BLOCKS, minh, minw, -1)
    x0 = jnp.moveaxis(x0, -4, -2).reshape(*lead, minh, minw, ch)
    x1 = nets.linear(q["stoch_out"], nets.dense(q["stoch"], stoch)).reshape(*lead, minh, minw, ch)
    x = nets.norm_act(q["norm"], x0 + x1)
    for conv, norm in zip(q["convs"][:-1], q["norms"]):
        x = nets.norm_act(norm, nets.upsample_conv(conv, x))
    return jax.nn.sigmoid(nets.upsample_conv(q["convs"][-1], x)).astype(jnp.float32)


def _strided_decode_image(q: nets.Params, feat: jax.Array, layout: ImageLayout, h: int, w: int) -> jax.Array:
    """The strided decoders' image, centred like their target x/255 - 0.5, float32."""
    start = (1, 1) if layout.padding == "VALID" else (h // 16, w // 16)
    x = nets.linear(q["in"], feat).reshape(*feat.shape[:-1], *start, -1)
    for conv, norm in zip(q["convs"][:-1], q["norms"]):
        x = nets.norm_act(norm, nets.conv_transpose(conv, x, layout.padding))
    return nets.conv_transpose(q["convs"][-1], x, layout.padding).astype(jnp.float32)


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
        pred = decode_image(p, deter, stoch, spec)
        image = jnp.concatenate([obs[k] for k in imgkeys], -1).astype(jnp.float32) / 255.0
        losses["image"] = p["layout"].loss_scale * jnp.square(pred - image).sum((-3, -2, -1))
    return losses
