"""Our Dreamer's parameters <-> the official DreamerV3's, by name and layout (docs/official_mapping.md).

Our parameters are a nested dict (learner.Learner.init: params plus the slow critic `slow_val`); the
official ones a flat dict of `module/sub/name` arrays (`agent.params`). `RULES` renames our paths; two
leaves also change layout:
- the policy's output layer: ours is one Linear to [mean, std] (2A outputs), the official code has two,
  `pol/head/<key>/mean` and `.../stddev` (A each), for continuous actions (a discrete policy's logits
  are one layer on both sides);
- the vector decoder's first layer: ours reads concat(deter, stoch), the official concat(stoch, deter),
  so its kernel rows are the same blocks in the other order;
- the image decoder's convs: ours are listed from the low resolution up, the official ones are named by
  the encoder stage they mirror (`conv2`, `conv1`, `conv0`) and the last is `imgout`.
Every element of every parameter on either side is covered exactly once, or the mapping fails: a
parameter of either side without a counterpart is an error. Official state that is not a parameter
(optimiser, return/value/advantage normalisers, the slow critic's update counter) is `STATE_PREFIXES`; the normaliser is compared apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Collection

import numpy as np

STATE_PREFIXES = ("opt/", "retnorm/", "valnorm/", "advnorm/", "slowval_count/")
HEADS = "rew|con|pol|val|slowval|dec"
RULES = (  # (our path pattern, official name) after `slow_val` is renamed `slowval`
    (r"^enc/mlp/(\d+)/lin/", r"enc/mlp\1/"),
    (r"^enc/mlp/(\d+)/norm/", r"enc/mlp\1norm/"),
    (r"^dyn/core/in_deter/lin/", "dyn/dynin0/"),
    (r"^dyn/core/in_deter/norm/", "dyn/dynin0norm/"),
    (r"^dyn/core/in_stoch/lin/", "dyn/dynin1/"),
    (r"^dyn/core/in_stoch/norm/", "dyn/dynin1norm/"),
    (r"^dyn/core/in_action/lin/", "dyn/dynin2/"),
    (r"^dyn/core/in_action/norm/", "dyn/dynin2norm/"),
    (r"^dyn/core/hidden/lin/", "dyn/dynhid0/"),
    (r"^dyn/core/hidden/norm/", "dyn/dynhid0norm/"),
    (r"^dyn/core/gates/", "dyn/dyngru/"),
    (r"^dyn/post/(\d+)/lin/", r"dyn/obs\1/"),
    (r"^dyn/post/(\d+)/norm/", r"dyn/obs\1norm/"),
    (r"^dyn/post_out/", "dyn/obslogit/"),
    (r"^dyn/prior/(\d+)/lin/", r"dyn/prior\1/"),
    (r"^dyn/prior/(\d+)/norm/", r"dyn/prior\1norm/"),
    (r"^dyn/prior_out/", "dyn/priorlogit/"),
    (rf"^({HEADS})/mlp/(\d+)/lin/", r"\1/mlp/linear\2/"),
    (rf"^({HEADS})/mlp/(\d+)/norm/", r"\1/mlp/norm\2/"),
    (r"^(rew|val|slowval)/out/", r"\1/head/logits/"),
    (r"^con/out/", "con/head/logit/"),
    (r"^dec/out/([^/]+)/", r"dec/vec/\1/pred/"),
    (r"^enc/convs/(\d+)/conv/", r"enc/cnn\1/"),
    (r"^enc/convs/(\d+)/norm/", r"enc/cnn\1norm/"),
    (r"^dec/image/deter/", "dec/sp0/"),
    (r"^dec/image/stoch/lin/", "dec/sp1/"),
    (r"^dec/image/stoch/norm/", "dec/sp1norm/"),
    (r"^dec/image/stoch_out/", "dec/sp2/"),
    (r"^dec/image/norm/", "dec/spnorm/"),
    (r"^pol/out/", "pol/head/action/logits/"),  # discrete actions; continuous ones are split in `entries`
)
DECODER_CONV = re.compile(r"^dec/image/(convs|norms)/(\d+)/")
LEAVES = {"w": "kernel", "b": "bias", "scale": "scale"}


@dataclass(frozen=True)
class Entry:
    """official[name][official_index] == ours[path][our_index] (indices on the last two axes)."""

    official: str
    official_index: tuple
    ours: str
    our_index: tuple


class MappingError(ValueError):
    """A parameter of one side has no counterpart on the other, or shapes disagree."""


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """Our nested params as {'dyn/core/gates/w': array}; list indices become path parts."""
    flat = {}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree)
    for key, value in items:
        path = f"{prefix}{key}"
        if isinstance(value, (dict, list, tuple)):
            flat.update(flatten(value, path + "/"))
        elif hasattr(value, "shape"):
            flat[path] = np.asarray(value)
    return flat


def _official_name(path: str) -> str:
    for pattern, replacement in RULES:
        renamed, count = re.subn(pattern, replacement, path)
        if count:
            head, _, leaf = renamed.rpartition("/")
            return f"{head}/{LEAVES[leaf]}"
    raise MappingError(f"our parameter {path} has no official counterpart (no rule in mapping.RULES)")


def _decoder_conv_name(path: str, match: re.Match, convs: int) -> str:
    """Our image decoder's convs[j] (and norms[j], which follow convs[j]) for j < convs - 1 is the
    official `conv{convs - 2 - j}` (`...norm`); the last conv is `imgout`."""
    kind, j = match.group(1), int(match.group(2))
    leaf = LEAVES[path.rpartition("/")[2]]
    if kind == "convs" and j == convs - 1:
        return f"dec/imgout/{leaf}"
    return f"dec/conv{convs - 2 - j}{'norm' if kind == 'norms' else ''}/{leaf}"


def entries(ours: dict[str, np.ndarray], stoch_flat: int, discrete: bool) -> list[Entry]:
    """The entries for our flat parameters (`flatten` of params, with the slow critic as `slowval/...`);
    `discrete`: the policy outputs logits (one official layer) rather than [mean, std] (two)."""
    table, every = [], slice(None)
    convs = len({p.split("/")[3] for p in ours if p.startswith("dec/image/convs/")})
    for path, value in ours.items():
        if match := DECODER_CONV.match(path):
            table.append(Entry(_decoder_conv_name(path, match, convs), (), path, ()))
        elif re.match(r"^pol/out/", path) and not discrete:
            half = value.shape[-1] // 2
            leaf = LEAVES[path.rpartition("/")[2]]
            for part, cols in (("mean", slice(0, half)), ("stddev", slice(half, None))):
                table.append(Entry(f"pol/head/action/{part}/{leaf}", (), path, (Ellipsis, cols)))
        elif path == "dec/mlp/0/lin/w":
            deter = value.shape[0] - stoch_flat
            table.append(Entry("dec/mlp/linear0/kernel", (slice(0, stoch_flat), every), path,
                               (slice(deter, None), every)))
            table.append(Entry("dec/mlp/linear0/kernel", (slice(stoch_flat, None), every), path,
                               (slice(0, deter), every)))
        else:
            table.append(Entry(_official_name(path), (), path, ()))
    return table


def _our_flat(params: dict, slow_val: dict) -> dict[str, np.ndarray]:
    return {**flatten(params), **{f"slowval/{k}": v for k, v in flatten(slow_val).items()}}


def _check_covered(arrays: dict[str, np.ndarray], counts: dict[str, np.ndarray], side: str) -> None:
    for name, count in counts.items():
        if not (count == 1).all():
            raise MappingError(f"{side} parameter {name}: {int((count == 0).sum())} elements unmapped, "
                               f"{int((count > 1).sum())} mapped twice")


def to_official(params: dict, slow_val: dict, official_shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Our parameters under the official names and layouts; `official_shapes` lists the official agent's
    parameters (state under STATE_PREFIXES excluded), each of which must be filled completely."""
    ours = _our_flat(params, slow_val)
    stoch = _stoch_flat(ours)
    shapes = {k: tuple(v) for k, v in official_shapes.items() if not k.startswith(STATE_PREFIXES)}
    out = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    counts = {k: np.zeros(s, np.int32) for k, s in shapes.items()}
    for entry in entries(ours, stoch, _discrete(shapes)):
        if entry.official not in out:
            raise MappingError(f"our {entry.ours} maps to {entry.official}, which the official agent lacks")
        source = ours[entry.ours][entry.our_index]
        target = out[entry.official][entry.official_index]
        if source.shape != target.shape:
            raise MappingError(f"{entry.ours}{entry.our_index} {source.shape} vs {entry.official} {target.shape}")
        out[entry.official][entry.official_index] = source
        counts[entry.official][entry.official_index] += 1
    _check_covered(out, counts, "official")
    return out


def to_ours(official: dict[str, np.ndarray], like_params: dict, like_slow: dict) -> tuple[dict, dict]:
    """Official arrays (parameters or their gradients) in our layout, shaped like `like_params` and
    `like_slow`; every official parameter must land somewhere and every one of ours be filled."""
    ours = _our_flat(like_params, like_slow)
    stoch = _stoch_flat(ours)
    out = {k: np.zeros(v.shape, np.float32) for k, v in ours.items()}
    counts = {k: np.zeros(v.shape, np.int32) for k, v in ours.items()}
    used = set()
    for entry in entries(ours, stoch, _discrete(official)):
        if entry.official not in official:
            raise MappingError(f"the official side has no {entry.official} (for our {entry.ours})")
        out[entry.ours][entry.our_index] = official[entry.official][entry.official_index]
        counts[entry.ours][entry.our_index] += 1
        used.add(entry.official)
    extra = sorted(k for k in official if k not in used and not k.startswith(STATE_PREFIXES))
    if extra:
        raise MappingError(f"official parameters without a counterpart in ours: {extra}")
    _check_covered(out, counts, "our")
    return _unflatten(like_params, out, ""), _unflatten(like_slow, out, "slowval/")


def _discrete(official_names: Collection[str]) -> bool:
    """Whether the official policy is categorical (its output layer is `pol/head/action/logits`)."""
    return "pol/head/action/logits/kernel" in official_names


def _stoch_flat(ours: dict[str, np.ndarray]) -> int:
    return ours["dyn/core/in_stoch/lin/w"].shape[0]


def _unflatten(like: Any, flat: dict[str, np.ndarray], prefix: str) -> Any:
    if isinstance(like, dict):
        return {k: _unflatten(v, flat, f"{prefix}{k}/") for k, v in like.items()}
    if isinstance(like, (list, tuple)):
        return type(like)(_unflatten(v, flat, f"{prefix}{i}/") for i, v in enumerate(like))
    if hasattr(like, "shape"):
        return flat[prefix.rstrip("/")]
    return like
