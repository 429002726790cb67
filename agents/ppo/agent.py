"""PPO (Schulman et al. 2017) behind the harness's Agent protocol, following CleanRL's details.

What a researcher expects from ppo_atari.py / ppo_continuous_action.py: orthogonal init, Adam with
eps 1e-5 and a linearly annealed learning rate, GAE, per-minibatch advantage normalisation, clipped
surrogate and clipped value loss, entropy bonus, global gradient clipping, optional early stop on KL,
and for continuous control running observation and reward normalisation (clipped to +-10) with a
Gaussian policy whose log std is a free parameter. The variant (categorical or Gaussian head) follows
the action space, and so do the settings in which CleanRL's two scripts differ (the `discrete:` and
`continuous:` sections of `harness/config/agent/ppo.yaml`; per-suite files are
`harness/config/agent_suite/ppo_<suite>.yaml`).

How the loop's step convention maps onto rollouts is explained in `rollout.py`.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.ppo.losses import policy_loss, value_loss
from agents.ppo.nets import ActorCritic
from agents.ppo.observations import Observations, RunningMeanStd
from agents.ppo.rollout import RolloutBuffer, gae

HARNESS_KEYS = {"name", "factory", "requires", "extra", "envs", "slurm"}
VARIANTS = ("discrete", "continuous")
VARIANT_KEYS = {"rollout", "epochs", "minibatches", "lr", "clip", "clip_value", "ent_coef", "obs_norm", "rewards"}
SHARED_KEYS = {
    "device", "threads", "precision", "anneal_lr", "anneal_steps", "gamma", "lam", "vf_coef", "max_grad_norm", "norm_adv",
    "target_kl", "hidden", "cnn_keys", "mlp_keys", "image_size", "grayscale", "frame_stack",
}  # fmt: skip
POSITIVE_INTS = ("rollout", "epochs", "minibatches", "frame_stack", "anneal_steps")
UNIT_FLOATS = ("gamma", "lam")
NON_NEGATIVE_FLOATS = ("lr", "clip", "ent_coef", "vf_coef", "max_grad_norm")
BOOLS = ("anneal_lr", "clip_value", "norm_adv", "obs_norm", "grayscale")
REWARDS = ("raw", "sign", "normalise")


def variant(config: dict[str, Any], continuous: bool) -> dict[str, Any]:
    """The shared settings together with the action space's section."""
    merged = {k: v for k, v in config.items() if k not in VARIANTS}
    merged.update(config.get("continuous" if continuous else "discrete") or {})
    return merged


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class PPOAgent:
    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Raise ValueError naming the first bad setting (unknown keys list the valid ones)."""
        if clash := sorted(VARIANT_KEYS & set(config)):
            key = clash[0]
            raise ValueError(f"agent.{key} depends on the action space: set agent.discrete.{key} or agent.continuous.{key}")
        checks = [("agent", config, HARNESS_KEYS | SHARED_KEYS | set(VARIANTS), SHARED_KEYS | set(VARIANTS))]
        checks += [(f"agent.{v}", config.get(v) or {}, VARIANT_KEYS, VARIANT_KEYS) for v in VARIANTS]
        for where, section, allowed, required in checks:
            if unknown := sorted(set(section) - allowed):
                raise ValueError(f"unknown PPO setting(s) {unknown} in {where}; valid: {sorted(allowed)}")
            if missing := sorted(required - set(section)):
                raise ValueError(f"{where} lacks {missing} (see harness/config/agent/ppo.yaml)")
        for continuous in (False, True):
            cfg = variant(config, continuous)
            for key in POSITIVE_INTS:
                if not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] < 1:
                    raise ValueError(f"agent.{key} must be a positive integer, got {cfg[key]!r}")
            for key in UNIT_FLOATS:
                if not 0 <= cfg[key] <= 1:
                    raise ValueError(f"agent.{key} must lie in [0, 1], got {cfg[key]!r}")
            for key in NON_NEGATIVE_FLOATS:
                if not isinstance(cfg[key], (int, float)) or cfg[key] < 0:
                    raise ValueError(f"agent.{key} must be a non-negative number, got {cfg[key]!r}")
            for key in BOOLS:
                if not isinstance(cfg[key], bool):
                    raise ValueError(f"agent.{key} must be true or false, got {cfg[key]!r}")
            if cfg["precision"] not in ("float32", "bfloat16"):
                raise ValueError(f"agent.precision must be float32 or bfloat16, got {cfg['precision']!r}")
            if cfg["rewards"] not in REWARDS:
                raise ValueError(f"agent.rewards must be one of {', '.join(REWARDS)}, got {cfg['rewards']!r}")
            if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(cfg["device"])):
                raise ValueError(f"agent.device must be auto, cpu, cuda or cuda:N, got {cfg['device']!r}")
            if cfg["threads"] != "auto" and not (isinstance(cfg["threads"], int) and cfg["threads"] >= 1):
                raise ValueError(f"agent.threads must be 'auto' or a positive integer, got {cfg['threads']!r}")
            if cfg["image_size"] is not None and not (isinstance(cfg["image_size"], int) and cfg["image_size"] >= 36):
                raise ValueError(f"agent.image_size must be null or an integer >= 36, got {cfg['image_size']!r}")
            if not (isinstance(cfg["hidden"], list) and all(isinstance(h, int) and h > 0 for h in cfg["hidden"])):
                raise ValueError(f"agent.hidden must be a list of positive layer widths, got {cfg['hidden']!r}")
            if cfg["minibatches"] > cfg["rollout"] * config.get("envs", 1):
                raise ValueError("agent.minibatches cannot exceed envs x rollout transitions")
            for key in ("cnn_keys", "mlp_keys"):
                try:
                    re.compile(cfg[key])
                except (re.error, TypeError) as error:
                    raise ValueError(f"agent.{key} is not a regular expression: {error}") from None

    def __init__(
        self, config: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space, num_envs: int, seed: int,
        workdir: Path | None = None,
    ) -> None:
        self.validate_config(config)
        if not isinstance(act_space, (gym.spaces.Discrete, gym.spaces.Box)):
            raise ValueError(f"PPO supports Discrete and Box action spaces, got {act_space}")
        self.continuous = isinstance(act_space, gym.spaces.Box)
        self.cfg = cfg = variant(config, self.continuous)
        self.act_space, self.num_envs = act_space, num_envs
        self.torch_device = pick_device(cfg["device"])
        # What the loop records in meta.json (and counts GPU hours from): "gpu: <name>" or "cpu".
        self.device = f"gpu: {torch.cuda.get_device_name(self.torch_device)}" if self.torch_device.type == "cuda" else "cpu"
        self.obs = Observations(cfg, obs_space, self.torch_device)
        if self.torch_device.type == "cpu":
            torch.set_num_threads(self.cpu_threads(cfg["threads"]))

        torch.manual_seed(seed)  # network initialisation
        action_dim = int(np.prod(act_space.shape)) if self.continuous else int(act_space.n)
        self.net = ActorCritic(self.obs.image_shape, self.obs.vector_dim, action_dim, self.continuous, cfg["hidden"])
        self.net.to(self.torch_device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=cfg["lr"], eps=1e-5)
        self.generator = torch.Generator(self.torch_device).manual_seed(seed)  # training actions, minibatches
        self.eval_generator = torch.Generator(self.torch_device).manual_seed(seed + 1)  # evaluation leaves it be

        specs = {
            "vector": ((num_envs, self.obs.vector_dim), torch.float32),
            "action": ((num_envs, action_dim) if self.continuous else (num_envs,), self.action_dtype),
            "logp": ((num_envs,), torch.float32),
            "reward": ((num_envs,), torch.float32),
            **{flag: ((num_envs,), torch.bool) for flag in ("is_first", "is_last", "is_terminal")},
        }
        if self.obs.image_shape is not None:
            specs["image"] = ((num_envs, *self.obs.image_shape), torch.uint8)
        self.buffer = RolloutBuffer(cfg["rollout"], specs, self.torch_device)
        self.reward_rms = RunningMeanStd(())
        self.discounted = np.zeros(num_envs)  # per-env discounted return, for reward normalisation
        self.pending: dict[str, Any] | None = None  # what act('train') chose, until observe sees it
        self.env_steps = 0  # env steps observed, reset steps excluded (as the loop counts agent steps)
        self.rollout_start = 0  # env_steps when the current rollout began, for the lr schedule
        self.updates = 0
        self.annealed_out = False  # warned that the schedule ended before the run

    def cpu_threads(self, setting: int | str) -> int:
        """'auto': half the cores this process may use for the CNN, leaving the rest to the env worker
        processes; one thread for the small MLPs, whose products are too small to split. Measured on a
        busy 2-core machine: two threads made both acting and updating 7-20x slower than one, because
        torch's threads wait on cores that env workers and other processes hold."""
        if setting != "auto":
            return int(setting)
        return max(1, len(os.sched_getaffinity(0)) // 2) if self.obs.image_key else 1

    def compute(self) -> torch.autocast:
        """The networks' arithmetic: float32, or bfloat16 autocast (parameters, losses and the
        distributions stay float32); bfloat16 made Nature CNN updates 2.3x faster on this CPU."""
        enabled = self.cfg["precision"] == "bfloat16"
        return torch.autocast(self.torch_device.type, dtype=torch.bfloat16, enabled=enabled)

    @property
    def action_dtype(self) -> torch.dtype:
        return torch.float32 if self.continuous else torch.int64

    def act(self, obs: dict[str, np.ndarray], state: Any, mode: str) -> tuple[np.ndarray, Any]:
        """Sample from the policy; `state` is the frame stack (None without images)."""
        with torch.no_grad():
            image = self.obs.image(obs, state) if self.obs.image_key else None
            vector = self.obs.vector(obs, update_stats=mode == "train")
            with self.compute():
                head = self.net.policy(image, vector).float()
            action = self.net.sample(head, self.generator if mode == "train" else self.eval_generator)
            logp = self.net.distribution(head).log_prob(action)
        env_action = action.cpu().numpy()
        if self.continuous:  # the env gets the clipped action, the loss the sampled one (CleanRL's ClipAction)
            env_action = np.clip(env_action, self.act_space.low, self.act_space.high).astype(np.float32)
        if mode == "train":
            self.pending = {"image": image, "vector": vector, "action": action, "logp": logp, "env": env_action}
        return env_action, image

    def observe(self, step: dict[str, np.ndarray]) -> None:
        pending, self.pending = self.pending, None
        if pending is None or not np.array_equal(np.asarray(step["action"]), pending["env"]):
            raise RuntimeError("PPO.observe() must follow the act(mode='train') that chose the step's action")
        flags = {k: torch.as_tensor(np.asarray(step[k], bool), device=self.torch_device) for k in ("is_first", "is_last", "is_terminal")}
        reward = torch.as_tensor(self.scale_reward(step), dtype=torch.float32, device=self.torch_device)
        row = {k: pending[k] for k in ("vector", "action", "logp")} | flags | {"reward": reward}
        if self.obs.image_key:
            row["image"] = pending["image"]
        self.buffer.add(row)
        self.env_steps += int((~flags["is_first"]).sum())

    def scale_reward(self, step: dict[str, np.ndarray]) -> np.ndarray:
        """The reward PPO trains on: raw; its sign (ppo_atari.py's ClipRewardEnv); or divided by the
        running std of the discounted return and clipped to +-10 (gymnasium's NormalizeReward)."""
        reward = np.asarray(step["reward"], np.float64)
        if self.cfg["rewards"] == "raw":
            return reward
        if self.cfg["rewards"] == "sign":
            return np.sign(reward)
        first = np.asarray(step["is_first"], bool)  # reset steps carry no real reward
        self.discounted = np.where(first, 0.0, self.discounted * self.cfg["gamma"] + reward)
        self.reward_rms.update(self.discounted[~first])
        return np.clip(reward / np.sqrt(self.reward_rms.var + 1e-8), -10, 10)

    def update(self) -> dict[str, float]:
        if not self.buffer.full:
            return {}
        metrics = self.train()
        self.buffer.restart()
        self.rollout_start = self.env_steps
        return metrics

    def learning_rate(self) -> float:
        """Linear decay to 0 over `anneal_steps`, evaluated where this rollout began (as CleanRL)."""
        if not self.cfg["anneal_lr"]:
            return self.cfg["lr"]
        fraction = 1.0 - self.rollout_start / self.cfg["anneal_steps"]
        if fraction <= 0 and not self.annealed_out:
            self.annealed_out = True
            warnings.warn(f"PPO's learning rate reached 0 at {self.rollout_start} agent steps and stays there: "
                          "set agent.anneal_steps to the run's budget (steps=N needs agent.anneal_steps=N)")
        return self.cfg["lr"] * max(0.0, fraction)

    def train(self) -> dict[str, float]:
        cfg, data = self.cfg, self.buffer.data
        steps = cfg["rollout"]
        image_all = data.get("image")
        with torch.no_grad(), self.compute():
            values = self.net.value(
                None if image_all is None else image_all.flatten(0, 1), data["vector"].flatten(0, 1)
            ).float().view(steps + 1, self.num_envs)
        advantages, returns = gae(data["reward"], values, data["is_last"], data["is_terminal"], cfg["gamma"], cfg["lam"])
        # Rows 0..T-1 start the transitions; is_last rows are not decisions (see rollout.py).
        valid = (~data["is_last"][:-1]).flatten().nonzero().squeeze(-1)
        batch = {
            "vector": data["vector"][:-1].flatten(0, 1),
            "action": data["action"][:-1].flatten(0, 1),
            "logp": data["logp"][:-1].flatten(),
            "value": values[:-1].flatten(),
            "advantage": advantages.flatten(),
            "return": returns.flatten(),
        }
        if image_all is not None:
            batch["image"] = image_all[:-1].flatten(0, 1)
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        history: dict[str, list[float]] = {}
        for _ in range(cfg["epochs"]):
            order = valid[torch.randperm(len(valid), generator=self.generator, device=self.torch_device)]
            for indices in order.tensor_split(cfg["minibatches"]):
                for key, value in self.minibatch_step({k: v[indices] for k, v in batch.items()}).items():
                    history.setdefault(key, []).append(value)
            if cfg["target_kl"] is not None and history["approx_kl"][-1] > cfg["target_kl"]:
                break
        self.updates += 1
        targets, predicted = batch["return"][valid], batch["value"][valid]
        explained = 1 - (targets - predicted).var() / targets.var().clamp_min(1e-8)
        return {k: float(np.mean(v)) for k, v in history.items()} | {
            "explained_variance": float(explained),
            "learning_rate": lr,
            "transitions": float(len(valid)),
        }

    def minibatch_step(self, mb: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        with self.compute():
            head, value = self.net(mb.get("image"), mb["vector"])
        head, value = head.float(), value.float()
        dist = self.net.distribution(head)
        log_ratio = dist.log_prob(mb["action"]) - mb["logp"]
        ratio = log_ratio.exp()
        advantage = mb["advantage"]
        if cfg["norm_adv"] and len(advantage) > 1:
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        pg_loss = policy_loss(ratio, advantage, cfg["clip"])
        v_loss = value_loss(value, mb["value"], mb["return"], cfg["clip"] if cfg["clip_value"] else None)
        entropy = dist.entropy().mean()
        loss = pg_loss - cfg["ent_coef"] * entropy + cfg["vf_coef"] * v_loss
        self.optimizer.zero_grad()
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg["max_grad_norm"])
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()  # the k3 estimator CleanRL logs
            clipfrac = ((ratio - 1).abs() > cfg["clip"]).float().mean()
        self.optimizer.step()
        return {
            "policy_loss": pg_loss.item(), "value_loss": v_loss.item(), "entropy": entropy.item(),
            "approx_kl": float(approx_kl), "clipfrac": float(clipfrac), "grad_norm": float(grad_norm),
        }  # fmt: skip

    def save(self, path: Path) -> None:
        torch.save(
            {
                "net": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "eval_generator": self.eval_generator.get_state(),
                "buffer": self.buffer.state_dict(),
                "obs_rms": self.obs.rms.state_dict(),
                "reward_rms": self.reward_rms.state_dict(),
                "discounted": self.discounted,
                "env_steps": self.env_steps,
                "rollout_start": self.rollout_start,
                "updates": self.updates,
            },
            Path(path) / "ppo.pt",
        )

    def load(self, path: Path) -> None:
        state = torch.load(Path(path) / "ppo.pt", map_location=self.torch_device, weights_only=False)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.eval_generator.set_state(state["eval_generator"].cpu())
        self.buffer.load_state_dict(state["buffer"])
        self.obs.rms.load_state_dict(state["obs_rms"])
        self.reward_rms.load_state_dict(state["reward_rms"])
        self.discounted = state["discounted"]
        self.env_steps, self.rollout_start, self.updates = state["env_steps"], state["rollout_start"], state["updates"]
        self.pending = None
