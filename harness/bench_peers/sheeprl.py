"""sheeprl 0.8.4's DreamerV3 of the Nature paper (`sheeprl.algos.dreamer_v3_5`) as a side of the peer bench.

Runs in .venv-sheeprl. The config is composed from sheeprl's own Hydra configs (`exp=dreamer_v3_5`,
`algo=dreamer_v3_5_1M` or `_12M`: the official sizes); agent, optimiser and moments are built as
`dreamer_v3_5.main` builds them, and an update is the body of its training loop: `train(...)` (world
model, actor and critic on one summed loss) then the slow critic's `update_target_critic`. Torch keeps its
default intra-op threads (one per core); sheeprl's CLI would set OMP_NUM_THREADS to its `num_threads: 1`
after torch is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import lightning
import numpy as np
import sheeprl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sheeprl.algos.dreamer_v3_5.agent import build_agent
from sheeprl.algos.dreamer_v3_5.dreamer_v3_5 import train, update_target_critic
from sheeprl.algos.dreamer_v3_5.utils import Moments, prepare_obs
from sheeprl.utils.metric import MetricAggregator
from sheeprl.utils.utils import dotdict

from harness.bench_peers.protocol import serve

# Observation spaces as sheeprl's DMC (vectors) and Crafter (channel-first RGB) wrappers give them.
TASKS = {
    "dmc_cartpole": (
        gym.spaces.Dict({"position": gym.spaces.Box(-np.inf, np.inf, (3,), np.float32),
                         "velocity": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)}),
        gym.spaces.Box(-1.0, 1.0, (1,), np.float32),
        ["env=dmc", "algo.cnn_keys.encoder=[]", "algo.mlp_keys.encoder=[position,velocity]"],
    ),
    "crafter": (
        gym.spaces.Dict({"rgb": gym.spaces.Box(0, 255, (3, 64, 64), np.uint8)}),
        gym.spaces.Discrete(17),
        ["env=crafter", "env.reward_as_observation=False", "algo.cnn_keys.encoder=[rgb]", "algo.mlp_keys.encoder=[]"],
    ),
}


def config(point: dict[str, Any]) -> dotdict:
    """sheeprl's composed config for the point, as its CLI composes it."""
    obs_space, _, overrides = TASKS[point["task"]]
    with initialize_config_dir(config_dir=str(Path(sheeprl.__file__).parent / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=[
            "exp=dreamer_v3_5", f"algo=dreamer_v3_5_{point['size'].upper()}", *overrides,
            f"algo.per_rank_batch_size={point['batch']}", f"algo.per_rank_sequence_length={point['length']}",
            "metric.log_level=0", "fabric.devices=1",
        ])
    return dotdict(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))


class Sheeprl:
    def __init__(self, point: dict[str, Any]):
        gpu = torch.cuda.is_available()
        # sheeprl's default precision (fabric.precision) is 32-true, also on a GPU
        self.cfg = cfg = config(point)
        precision = cfg.fabric.precision
        MetricAggregator.disabled = True  # as main() does with metric.log_level 0
        self.fabric = lightning.Fabric(accelerator="cuda" if gpu else "cpu", devices=1, precision=precision)
        obs_space, act_space, _ = TASKS[point["task"]]
        self.continuous = isinstance(act_space, gym.spaces.Box)
        self.actions_dim = tuple(act_space.shape if self.continuous else [act_space.n])
        self.world_model, self.actor, self.critic, self.target_critic, self.player = build_agent(
            self.fabric, self.actions_dim, self.continuous, cfg, obs_space)
        params = [*self.world_model.parameters(), *self.actor.parameters(), *self.critic.parameters()]
        optimizer = hydra.utils.instantiate(cfg.algo.optimizer, params=params, _convert_="all")
        self.optimizer = self.fabric.setup_optimizers(optimizer)
        m = cfg.algo.actor.moments
        self.moments = Moments(m.decay, m.max, m.percentile.low, m.percentile.high)
        self.obs_keys = cfg.algo.cnn_keys.encoder + cfg.algo.mlp_keys.encoder
        # Sampling is outside the timing on every side: one batch of the replay's layout ([T, B, ...] with
        # the replay context's latents, as `sample_sequences` yields it), on the device beforehand.
        T, B, wm = point["length"] + cfg.algo.replay_context, point["batch"], cfg.algo.world_model
        rng = np.random.default_rng(0)
        batch = {k: rng.integers(0, 256, (T, B, *obs_space[k].shape)) if obs_space[k].dtype == np.uint8
                 else rng.normal(size=(T, B, *obs_space[k].shape)) for k in self.obs_keys}
        if self.continuous:
            batch["actions"] = rng.uniform(-1, 1, (T, B, *act_space.shape))
        else:
            batch["actions"] = np.eye(act_space.n)[rng.integers(0, act_space.n, (T, B))]
        batch.update(rewards=rng.normal(size=(T, B, 1)), terminated=np.zeros((T, B, 1)),
                     truncated=np.zeros((T, B, 1)), is_first=np.zeros((T, B, 1)))
        batch = {k: v.astype(np.uint8 if obs_space.get(k, act_space).dtype == np.uint8 else np.float32)
                 for k, v in batch.items()}
        batch["deter"] = rng.normal(size=(T, B, wm.recurrent_model.recurrent_state_size)).astype(np.float16)
        batch["stoch"] = rng.integers(0, wm.discrete_size, (T, B, wm.stochastic_size)).astype(np.uint8)
        self.batch = {k: torch.as_tensor(v, device=self.fabric.device) for k, v in batch.items()}
        self.obs = {k: (rng.integers(0, 256, (1, *obs_space[k].shape)) if obs_space[k].dtype == np.uint8
                        else rng.normal(size=(1, *obs_space[k].shape))).astype(obs_space[k].dtype)
                    for k in self.obs_keys}
        self.player.num_envs = 1
        self.player.init_states()
        self.updates = 0

    def update(self) -> None:
        critic = self.cfg.algo.critic
        latents = train(self.fabric, self.cfg, self.world_model, self.actor, self.critic, self.target_critic,
                        self.optimizer, self.moments, self.batch, None, self.actions_dim)
        if self.updates % critic.per_rank_target_network_update_freq == 0:
            update_target_critic(self.critic, self.target_critic, critic.tau)
        if latents is not None and torch.cuda.is_available():
            torch.cuda.synchronize()
        self.updates += 1

    def policy_step(self) -> None:
        with torch.inference_mode():
            obs = prepare_obs(self.fabric, self.obs, cnn_keys=self.cfg.algo.cnn_keys.encoder, num_envs=1)
            actions = self.player.get_actions(obs)
            torch.cat(actions, -1).cpu().numpy()
            # the latent the training loop stores with every step (ours stores it too)
            wm = self.cfg.algo.world_model
            self.player.recurrent_state.half().cpu().numpy()
            self.player.stochastic_state.view(1, 1, wm.stochastic_size, wm.discrete_size).argmax(-1).cpu().numpy()

    def info(self) -> dict[str, Any]:
        return {"device": str(self.fabric.device), "platform": "cuda" if torch.cuda.is_available() else "cpu",
                "dtype": self.fabric._precision.precision if hasattr(self.fabric, "_precision") else "",
                "threads": f"torch {torch.get_num_threads()} intra-op",
                "version": f"sheeprl {sheeprl.__version__}, torch {torch.__version__}"}


if __name__ == "__main__":
    serve(Sheeprl)
