"""Separate Adam optimisers for the world model, the actor and the critic (V1, V2, V3-2023).

`optimizer.kind: adam_per_module` with one section per module group:
  {model: {lr, eps, clip, wd}, actor: {...}, critic: {...}}
Each group clips its own gradient to the global norm `clip` (over that group's tensors only), then
applies Adam (eps added outside the square root, as Keras) with decoupled weight decay `wd` scaled by the
learning rate (V2's `wd 1e-6`). Parameters are grouped by the learner's top-level names: 'pol' is the
actor, 'val' the critic, everything else (encoder, RSSM, decoder, reward, continue) the world model.
"""

from __future__ import annotations

from typing import Any

import optax

GROUPS = ("model", "actor", "critic")
KEYS = ("lr", "eps", "clip", "wd")


def group_of(name: str) -> str:
    return {"pol": "actor", "val": "critic"}.get(name, "model")


def _adam(lr: float, eps: float, clip: float, wd: float) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(clip), optax.adamw(lr, eps=eps, weight_decay=wd))


def adam_per_module(**groups: dict[str, float]) -> optax.GradientTransformation:
    if set(groups) != set(GROUPS):
        raise ValueError(f"optimizer adam_per_module needs the sections {', '.join(GROUPS)}, got {', '.join(groups)}")
    for name, cfg in groups.items():
        if set(cfg) != set(KEYS):
            raise ValueError(f"optimizer.{name} needs the keys {', '.join(KEYS)}, got {', '.join(cfg)}")

    def labels(params: dict[str, Any]) -> dict[str, str]:
        return {name: group_of(name) for name in params}

    return optax.multi_transform({name: _adam(**cfg) for name, cfg in groups.items()}, labels)
