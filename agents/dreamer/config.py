"""Dreamer's settings: size presets (`size1m` ... `size400m` of the 2024 code's configs.yaml) and validation of
the agent config.

The agent config is the `agent` section of the run config (harness/config/agent/<preset>.yaml plus
the per-suite file agent_suite/<preset>_<suite>.yaml and command-line overrides). `size` fills in the
network widths; an explicit `rssm.deter`, `rssm.hidden`, `rssm.classes`, `depth` or `units` wins.
Every preset states the learner's switches (learner.py explains them); `validate` checks their values.
"""

from __future__ import annotations

import copy
from typing import Any

import jax

from agents.dreamer import codecs, devices, heads, learner, nets, policies, replay, rssm

SIZES: dict[str, dict[str, int]] = {
    "1m": {"deter": 512, "hidden": 64, "classes": 4, "depth": 4, "units": 64},
    "12m": {"deter": 2048, "hidden": 256, "classes": 16, "depth": 16, "units": 256},
    "25m": {"deter": 3072, "hidden": 384, "classes": 24, "depth": 24, "units": 384},
    "50m": {"deter": 4096, "hidden": 512, "classes": 32, "depth": 32, "units": 512},
    "100m": {"deter": 6144, "hidden": 768, "classes": 48, "depth": 48, "units": 768},
    "200m": {"deter": 8192, "hidden": 1024, "classes": 64, "depth": 64, "units": 1024},
    "400m": {"deter": 12288, "hidden": 1536, "classes": 96, "depth": 96, "units": 1536},
}

REQUIRED = (
    "size train_ratio batch_size batch_length train_after imag_horizon horizon lam actent slowreg slow_rate "
    "slow_every free_nats retnorm loss_scales rssm heads policy optimizer replay compute_dtype layers codec devices"
).split()
BOOLEAN = (True, False)
SWITCHES: dict[str, tuple] = {  # the component switches and their valid values
    "policy.dist": policies.CONTINUOUS,
    "heads.scalar": tuple(heads.SCALAR_OUTPUTS),
    "free_avg": BOOLEAN,
    "reward_transform": tuple(learner.REWARD_TRANSFORMS),
    "cont_head": BOOLEAN,
    "contdisc": BOOLEAN,
    "actor_grad.discrete": learner.ACTOR_GRADS,
    "actor_grad.continuous": learner.ACTOR_GRADS,
    "critic_target": learner.CRITIC_TARGETS,
    "backprop_baseline": BOOLEAN,
    "latent_replay": BOOLEAN,
    "eval_policy": ("sample", "mode"),  # eval actions: samples of the policy or its mode (greedy)
    "layers.act": nets.ACTIVATIONS,
    "layers.norm": nets.NORMS,
    "codec.image": codecs.LAYOUTS,
    "codec.conv_act": nets.ACTIVATIONS,
    "rssm.initial": rssm.INITIALS,
}
DTYPES = ("auto", "float32", "bfloat16")
OUTSCALES = tuple(f"heads.outscale.{head}" for head in ("reward", "cont", "policy", "value"))  # output init scales
WIDTHS = ("rssm.deter", "rssm.hidden", "rssm.classes", "depth", "units")  # what `size` fills in
MISSING = object()


def _get(config: dict[str, Any], key: str) -> Any:
    """The value at a dotted key such as 'policy.dist', or MISSING."""
    for part in key.split("."):
        config = config.get(part, MISSING) if isinstance(config, dict) else MISSING
    return config


def validate(config: dict[str, Any]) -> None:
    """Raise ValueError with a clear message if the config cannot build an agent."""
    missing = [k for k in (*REQUIRED, *SWITCHES, *OUTSCALES) if _get(config, k) is MISSING]
    if missing:
        raise ValueError(f"dreamer config lacks keys: {', '.join(missing)}")
    for key, valid in SWITCHES.items():
        if _get(config, key) not in valid:
            raise ValueError(f"unknown agent.{key} {_get(config, key)!r}; valid: {', '.join(map(str, valid))}")
    if config["size"] is None:  # no size preset: every width is given (the V1, V2 and V3-2023 presets)
        unset = [k for k in WIDTHS if not (config["rssm"] if k.startswith("rssm.") else config).get(k.split(".")[-1])]
        if unset:
            raise ValueError(f"agent.size null needs every width set; missing: {', '.join(unset)}")
    elif str(config["size"]) not in SIZES:
        raise ValueError(f"unknown agent.size '{config['size']}'; valid sizes: {', '.join(SIZES)}")
    if config["replay"].get("store") not in replay.STORES:
        raise ValueError(f"unknown agent.replay.store {config['replay'].get('store')!r}; valid: {', '.join(replay.STORES)}")
    if not int(config["replay"].get("chunk", 0)) > 0:
        raise ValueError(f"agent.replay.chunk must be a positive number of steps, got {config['replay'].get('chunk')}")
    if config["compute_dtype"] not in DTYPES:
        raise ValueError(f"unknown agent.compute_dtype '{config['compute_dtype']}'; valid: {', '.join(DTYPES)}")
    for key in ("train_ratio", "batch_size", "batch_length", "imag_horizon", "slow_every"):
        if not float(config[key]) > 0:
            raise ValueError(f"agent.{key} must be positive, got {config[key]}")
    devices.validate(config["devices"], config["batch_size"])
    if (config["rssm"].get("deter") or SIZES[str(config["size"])]["deter"]) % config["rssm"]["blocks"]:
        raise ValueError("agent.rssm.deter must be divisible by agent.rssm.blocks")


def resolve(config: dict[str, Any]) -> dict[str, Any]:
    """A validated copy with the size preset filled in and `compute_dtype` made concrete."""
    validate(config)
    cfg = copy.deepcopy(dict(config))
    preset = SIZES.get(str(cfg["size"]), {})  # empty for size null
    rssm = dict(cfg["rssm"])
    for key in ("deter", "hidden", "classes"):
        rssm[key] = int(rssm.get(key) or preset[key])
    cfg["rssm"] = rssm
    cfg["depth"] = int(cfg.get("depth") or preset["depth"])
    cfg["units"] = int(cfg.get("units") or preset["units"])
    if cfg["compute_dtype"] == "auto":
        cfg["compute_dtype"] = "bfloat16" if jax.default_backend() == "gpu" else "float32"
    return cfg
