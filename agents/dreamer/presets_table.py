"""Markdown tables of what differs between the Dreamer presets, generated from their yaml configs.

    python -m agents.dreamer.presets_table            # prints the tables
    python -m agents.dreamer.presets_table --write    # rewrites them in docs/reference/presets.md

The first table reads harness/config/agent/<preset>.yaml, where every preset states the learner's
switches (agents/dreamer/learner.py explains them). The second table lists each preset's per-suite
settings from harness/config/agent_suite/<preset>_<suite>.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[2] / "harness" / "config"
PRESETS = ("dreamerv1", "dreamerv2", "dreamerv3_2023", "dreamerv3")
SUITES = ("classic", "atari26", "atari57", "atari57_dreamerv2", "dmc_proprio", "dmc_vision", "crafter")


def load(preset: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIG_DIR / "agent" / f"{preset}.yaml").read_text())


def _num(x: float) -> str:
    return f"{x:g}"


def _latent(c: dict) -> str:
    r = c["rssm"]
    if r["latent"] == "gaussian":
        return f"Gaussian {r['stoch']}"
    return f"categorical {r['stoch']} x {r.get('classes') or 'size ' + c['size']}, unimix {_num(r['unimix'])}"


def _kl(c: dict) -> str:
    dyn, rep = c["loss_scales"]["dyn"], c["loss_scales"]["rep"]
    return f"dyn {_num(dyn)} / rep {_num(rep)} (balance {_num(round(dyn / (dyn + rep), 3))}, scale {_num(dyn + rep)})"


def _cont(c: dict) -> str:
    if not c["cont_head"]:
        return "none (constant gamma)"
    target = "gamma (1 - terminal)" if c["contdisc"] else "1 - terminal, gamma x mode"
    return f"Bernoulli, target {target}, scale {_num(c['loss_scales']['con'])}"


def _slow(c: dict) -> str:
    if c["critic_target"] == "online" and not c["slowreg"]:
        return "none"
    every = "every update" if c["slow_every"] == 1 else f"every {c['slow_every']} updates"
    use = "targets and baseline" if c["critic_target"] == "slow" else f"regulariser {_num(c['slowreg'])}"
    return f"rate {_num(c['slow_rate'])} {every}; {use}"


def _optimizer(c: dict) -> str:
    o = c["optimizer"]
    if o["kind"] == "adam_per_module":
        groups = (o["model"], o["actor"], o["critic"])
        lrs = " / ".join(_num(g["lr"]) for g in groups)
        clips = " / ".join(_num(g["clip"]) for g in groups)
        return f"3 x Adam, lr {lrs}, clip {clips}, eps {_num(groups[0]['eps'])}, wd {_num(groups[0]['wd'])}"
    return f"{o['kind']}, lr {_num(o['lr'])}, warm-up {o['warmup']}, AGC {_num(o['agc'])}, eps {_num(o['eps'])}"


def _layers(c: dict) -> str:
    layer = c["layers"]
    if layer["norm"] == "none":
        return f"Linear -> {layer['act']} (no norm)"
    return f"Linear -> {layer['norm']} norm (eps {_num(layer['eps'])}) -> {layer['act']}"


def _codec(c: dict) -> str:
    codec = c["codec"]
    units = codec["mlp_units"] or c.get("units") or f"size {c['size']}"
    return f"image `{codec['image']}`, conv act {codec['conv_act']}; vector MLPs {codec['mlp_layers']} x {units}"


def _heads(c: dict) -> str:
    h = c["heads"]
    return " / ".join(f"{h[f'{k}_layers']} ({_num(h['outscale'][k])})" for k in ("reward", "cont", "policy", "value"))


def _data(c: dict) -> str:
    if (c.get("explore") or {}).get("random_prefill"):
        first = f"{c['train_after']} steps of random actions"
    else:
        first = f"the policy until replay holds {c['train_after']} windows"
    return f"{first}; {c.get('pretrain', 0)} extra updates at the start"


ROWS: list[tuple[str, Callable[[dict], str]]] = [
    ("dense layers", _layers),
    ("encoder / decoder", _codec),
    ("heads reward / cont / policy / value: layers (output init scale)", _heads),
    ("RSSM core", lambda c: c["rssm"]["core"]),
    ("initial state", lambda c: c["rssm"]["initial"]),
    ("latent", _latent),
    ("deter / hidden / units", lambda c: " / ".join(
        str(x or f"size {c['size']}") for x in (c["rssm"].get("deter"), c["rssm"].get("hidden"), c.get("units")))),
    ("KL loss", _kl),
    ("free nats", lambda c: f"{_num(c['free_nats'])} on the {'batch mean' if c['free_avg'] else 'entry'}"),
    ("reward / value output", lambda c: c["heads"]["scalar"]),
    ("reward transform", lambda c: c["reward_transform"]),
    ("continue head", _cont),
    ("gamma", lambda c: _num(round(1 - 1 / c["horizon"], 5))),
    ("actor distribution (cont.)", lambda c: c["policy"]["dist"]),
    ("actor gradient disc. / cont.", lambda c: f"{c['actor_grad']['discrete']} / {c['actor_grad']['continuous']}"),
    ("entropy scale", lambda c: _num(c["actent"])),
    ("eval actions", lambda c: {"mode": "the policy's mode", "sample": "sampled"}[c["eval_policy"]]),
    ("return normalisation", lambda c: "percentile 5-95" if c["retnorm"]["rate"] else "none"),
    ("slow critic", _slow),
    ("replay value loss", lambda c: _num(c["loss_scales"]["repval"])),
    ("optimizer (model / actor / critic)", _optimizer),
    ("batch", lambda c: f"{c['batch_size']} x {c['batch_length']}"),
    ("train ratio", lambda c: _num(c["train_ratio"])),
    ("before training", _data),
    ("exploration noise", lambda c: _num((c.get("explore") or {}).get("noise", 0.0))),
    ("latent replay", lambda c: "yes" if c["latent_replay"] else "no (zero state)"),
    ("replay", lambda c: f"{c['replay']['capacity']:.0e}{', online queue' if c['replay']['online'] else ''}"),
    ("envs", lambda c: str(c["envs"])),
]


def preset_table(presets: tuple[str, ...] = PRESETS) -> str:
    configs = [load(p) for p in presets]
    lines = ["| setting | " + " | ".join(f"`{p}`" for p in presets) + " |", "|---" * (len(presets) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(row(c) for c in configs) + " |" for label, row in ROWS]
    return "\n".join(lines)


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(_flat(value, name + ".") if isinstance(value, dict) else {name: value})
    return out


def suite_table(presets: tuple[str, ...] = PRESETS) -> str:
    lines = ["| preset | suite | settings over the preset's defaults |", "|---|---|---|"]
    for preset in presets:
        base = _flat({"agent": load(preset)})
        for suite in SUITES:
            path = CONFIG_DIR / "agent_suite" / f"{preset}_{suite}.yaml"
            if path.exists():
                settings = _flat(yaml.safe_load(path.read_text()) or {})
                changed = {k: v for k, v in settings.items() if base.get(k) != v}
                text = ", ".join(f"`{k.removeprefix('agent.')}={v}`" for k, v in changed.items())
                lines.append(f"| `{preset}` | {suite} | {text} |")
    return "\n".join(lines)


PRESETS_MD = Path(__file__).resolve().parents[2] / "docs" / "reference" / "presets.md"
MARKERS = ("<!-- BEGIN generated tables -->", "<!-- END generated tables -->")


def write() -> None:
    """Replace the text between the markers of docs/reference/presets.md with both tables."""
    for path, tables in ((PRESETS_MD, f"{preset_table()}\n\n{suite_table()}"),):
        text = path.read_text()
        head, found, rest = text.partition(MARKERS[0])
        if not found:
            raise ValueError(f"{path} lacks the marker {MARKERS[0]}")
        _, _, tail = rest.partition(MARKERS[1])
        path.write_text(f"{head}{MARKERS[0]}\n{tables}\n{MARKERS[1]}{tail}")


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write()
    else:
        print(preset_table())
        print()
        print(suite_table())
