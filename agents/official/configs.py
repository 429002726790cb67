"""The official code's `configs.yaml`, written from the 2024 code's defaults (its sdist has none).

`CONFIGS` has the layout of the official `dreamerv3/configs.yaml`: a `defaults` block and named blocks
that override it (`--configs dmc_proprio size1m`). Values are those of danijar/dreamerv3 at e3f0224
(its `dreamerv3/configs.yaml`, and the config.yaml the official code wrote for
tests/results/data/official_logdirs/dmc_cartpole_balance_size1m). The defaults are the size200m model,
as upstream. `cpu` selects what this project runs the official code with: CPU, float32 compute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

RSSM_DEFAULTS = dict(
    deter=8192, hidden=1024, stoch=32, classes=64, act="silu", norm="rms", unimix=0.01, outscale=1.0,
    winit="trunc_normal_in", imglayers=2, obslayers=1, dynlayers=1, absolute=False, blocks=8, free_nats=1.0,
)
CODEC = dict(
    depth=64, units=1024, mults=[2, 3, 4, 4], layers=3, kernel=5, act="silu", norm="rms",
    winit="trunc_normal_in", outer=False, strided=False,
)
HEAD = dict(layers=1, units=1024, act="silu", norm="rms", winit="trunc_normal_in")

DEFAULTS: dict[str, Any] = {
    "logdir": "~/logdir/{timestamp}",
    "method": "name",  # the official placeholder; results.load reads it as "unnamed"
    "task": "dummy_disc",
    "seed": 0,
    "script": "train",
    "batch_size": 16,
    "batch_length": 64,
    "report_length": 32,
    "consec_train": 1,
    "consec_report": 1,
    "replay_context": 1,
    "random_agent": False,
    "replica": 0,
    "replicas": 1,
    "errfile": False,
    "ipv6": False,
    "clock_addr": "",
    "clock_port": "",
    "jax": dict(
        platform="cuda", compute_dtype="bfloat16", policy_devices=[0], train_devices=[0], mock_devices=0,
        prealloc=True, jit=True, debug=False, expect_devices=0, enable_policy=True, coordinator_address="",
    ),
    "logger": dict(
        outputs=["jsonl", "scope"], filter="score|length|fps|ratio|train/loss/|train/rand/", timer=True,
        fps=15, user="",
    ),
    "env": {
        "atari": dict(size=[96, 96], repeat=4, sticky=True, gray=True, actions="all", lives="unused",
                      noops=30, autostart=False, pooling=2, aggregate="max", resize="pillow",
                      clip_reward=False),
        "atari100k": dict(size=[64, 64], repeat=4, sticky=False, gray=False, actions="needed",
                          lives="unused", noops=30, autostart=False, resize="pillow", clip_reward=False),
        "crafter": dict(size=[64, 64], logs=False),
        "dmc": dict(size=[64, 64], repeat=1, image=True, proprio=True, camera=-1),
        "dmlab": dict(size=[64, 64], repeat=4, episodic=True, use_seed=True),
        "minecraft": dict(size=[64, 64], break_speed=100.0, logs=False, length=36000),
        "loconav": dict(size=[64, 64], repeat=1, camera=-1),
        "procgen": dict(size=[96, 96], resize="pillow"),
    },
    "replay": dict(
        size=5e6, online=True, fracs=dict(uniform=1.0, priority=0.0, recency=0.0),
        prio=dict(exponent=0.8, maxfrac=0.5, initial=float("inf"), zero_on_sample=True),
        priosignal="model", recexp=1.0, chunksize=1024,
    ),
    "run": dict(
        steps=1e10, duration=0, train_ratio=32.0, log_every=120, report_every=300, save_every=900,
        envs=16, eval_envs=4, eval_eps=1, report_batches=1, from_checkpoint="", episode_timeout=180,
        actor_addr="localhost:{auto}", replay_addr="localhost:{auto}", logger_addr="localhost:{auto}",
        actor_batch=-1, actor_threads=1, agent_process=False, remote_replay=False, remote_envs=False,
        usage=dict(psutil=True, nvsmi=True, gputil=False, malloc=False, gc=False), debug=True,
    ),
    "agent": dict(
        report=True, report_gradnorms=False,
        enc=dict(typ="simple", simple=dict(CODEC, symlog=True)),
        dec=dict(typ="simple", simple=dict(CODEC, outscale=1.0, bspace=8)),
        dyn=dict(typ="rssm", rssm=RSSM_DEFAULTS),
        rewhead=dict(HEAD, output="symexp_twohot", outscale=0.0, bins=255),
        conhead=dict(HEAD, output="binary", outscale=1.0),
        policy=dict(HEAD, layers=3, minstd=0.1, maxstd=1.0, unimix=0.01, outscale=0.01),
        value=dict(HEAD, layers=3, output="symexp_twohot", outscale=0.0, bins=255),
        policy_dist_disc="categorical",
        policy_dist_cont="bounded_normal",
        loss_scales=dict(rec=1.0, rew=1.0, con=1.0, dyn=1.0, rep=0.1, policy=1.0, value=1.0, repval=0.3),
        opt=dict(lr=4e-5, agc=0.3, eps=1e-20, beta1=0.9, beta2=0.999, momentum=True, wd=0.0,
                 schedule="const", warmup=1000, anneal=0),
        # The slow critic is stated with its own keys (not `slowtar`) in imag_loss and repl_loss.
        imag_loss=dict(slowtar=False, lam=0.95, actent=3e-4, slowreg=1.0),
        repl_loss=dict(slowtar=False, lam=0.95, slowreg=1.0),
        slowvalue=dict(rate=0.02, every=1),
        retnorm=dict(impl="perc", rate=0.01, limit=1.0, perclo=5.0, perchi=95.0, debias=False),
        valnorm=dict(impl="none", rate=0.01, limit=1e-8),
        advnorm=dict(impl="none", rate=0.01, limit=1e-8),
        imag_length=15, imag_last=0, horizon=333, contdisc=True, ac_grads=False, reward_grad=True,
        repval_loss=True, repval_grad=True,
    ),
}


def _size(deter: int, hidden: int, classes: int, depth: int, units: int) -> dict[str, Any]:
    """A size block: the same regex keys upstream uses (every `.depth` and `.units` entry)."""
    return {
        "agent.dyn.rssm": dict(deter=deter, hidden=hidden, classes=classes),
        r".*\.depth": depth,
        r".*\.units": units,
    }


CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": DEFAULTS,
    "size1m": _size(512, 64, 4, 4, 64),
    "size12m": _size(2048, 256, 16, 16, 256),
    "size25m": _size(3072, 384, 24, 24, 384),
    "size50m": _size(4096, 512, 32, 32, 512),
    "size100m": _size(6144, 768, 48, 48, 768),
    "size200m": _size(8192, 1024, 64, 64, 1024),
    "size400m": _size(12288, 1536, 96, 96, 1536),
    "dmc_proprio": {"task": "dmc_walker_walk", "env.dmc.image": False, "run.train_ratio": 1024,
                    "run.steps": 1.1e6, **_size(512, 64, 4, 4, 64)},
    "dmc_vision": {"task": "dmc_walker_walk", "env.dmc.proprio": False, "run.train_ratio": 256,
                   "run.steps": 1.1e6},
    "crafter": {"task": "crafter_reward", "run.envs": 1, "run.train_ratio": 512, "run.steps": 1.1e6},
    "atari100k": {"task": "atari100k_pong", "run.envs": 1, "run.train_ratio": 256, "run.steps": 1.1e5},
    "cpu": {"jax.platform": "cpu", "jax.prealloc": False, "jax.compute_dtype": "float32"},
}


def write_configs(path: Path) -> None:
    """Write `CONFIGS` as the official `configs.yaml` at `path`."""
    path.write_text(yaml.safe_dump(CONFIGS, sort_keys=False))
