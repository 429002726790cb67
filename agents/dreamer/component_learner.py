"""The learner of the DreamerV1, DreamerV2 and 2023-DreamerV3 presets (`agent.learner: components`).

It is `learner.Learner` with the loss assembled from config-selected components instead of V3's fixed
choices; networks, RSSM, codecs, imagination, lambda-returns and return normalisation are shared.
The switches (spec §1.9, §3, §4; agents/dreamer/PRESETS.md has the table per preset):
  policy.dist          bounded_normal | trunc_normal | tanh_normal (continuous actor, policies.py)
  heads.scalar         twohot | twohot_symlog | mse (reward and value outputs, scalar_heads.py)
  free_avg             free nats on the batch-mean KL (V1/V2) or free bits per entry (V3), kl.py
  reward_transform     identity | tanh (V2 on Atari and Crafter)
  cont_head, contdisc  learned continue/discount head; gamma folded into its target (V2, V3) or
                       multiplied onto its mode (V3-2023); without the head gamma is constant (V1)
  actor_grad           {discrete, continuous}: reinforce | backprop (dynamics backprop, see `_imagine`)
  critic_target        online | slow: the critic that bootstraps the lambda-returns and is the baseline
  backprop_baseline    subtract that critic's value from the backprop objective (V3-2023) or not (V1/V2)
  slow_every, slow_rate  slow critic update: EMA every update (V3) or hard copy every 100 (V2)
  latent_replay        start the filter from the replayed latent (V2, V3) or from zeros (V1)
  optimizer.kind       laprop_agc | adam_per_module (adam.py)
The actor never changes the world model: imagination runs on stop-gradient world-model parameters,
so dynamics backprop moves only the actor, as with V1/V2's separate optimisers.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import optax

from agents.dreamer import behavior, codecs, heads, kl, learner, nets, optim, policies, rssm
from agents.dreamer.dists import binary_loss
from agents.dreamer.learner import Learner, TrainState

sg = jax.lax.stop_gradient

REWARD_TRANSFORMS = {"identity": lambda r: r, "tanh": jnp.tanh}
ACTOR_GRADS = ("reinforce", "backprop")
CRITIC_TARGETS = ("online", "slow")
KEYS = (
    "free_avg reward_transform cont_head contdisc actor_grad critic_target backprop_baseline slow_every "
    "latent_replay"
).split()
# The choices V3's own learner (learner.py) makes; with them this learner computes V3's loss.
V3_SWITCHES: dict[str, Any] = {
    "free_avg": False, "reward_transform": "identity", "cont_head": True, "contdisc": True,
    "actor_grad": {"discrete": "reinforce", "continuous": "reinforce"}, "critic_target": "online",
    "backprop_baseline": False, "slow_every": 1, "latent_replay": True, "policy": {"dist": "bounded_normal"},
}


def validate(cfg: dict[str, Any]) -> None:
    """Raise ValueError naming the key when a component switch is missing or unknown."""
    missing = [k for k in KEYS if k not in cfg]
    if missing:
        raise ValueError(f"agent.learner=components needs the keys: {', '.join(missing)}")
    choices = [
        ("heads.scalar", cfg["heads"]["scalar"], heads.SCALAR_OUTPUTS),
        ("reward_transform", cfg["reward_transform"], REWARD_TRANSFORMS),
        ("actor_grad.discrete", cfg["actor_grad"].get("discrete"), ACTOR_GRADS),
        ("actor_grad.continuous", cfg["actor_grad"].get("continuous"), ACTOR_GRADS),
        ("critic_target", cfg["critic_target"], CRITIC_TARGETS),
    ]
    for key, value, valid in choices:
        if value not in valid:
            raise ValueError(f"unknown agent.{key} '{value}'; valid: {', '.join(valid)}")
    if int(cfg["slow_every"]) < 1:
        raise ValueError(f"agent.slow_every must be >= 1, got {cfg['slow_every']}")


class ComponentLearner(Learner):
    def __init__(self, cfg: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space):
        validate(cfg)
        self.cfg = cfg
        self.spec = codecs.obs_spec(obs_space)
        self.dtype = jnp.dtype(cfg["compute_dtype"])
        kind = "discrete" if isinstance(act_space, gym.spaces.Discrete) else "continuous"
        self.backprop = cfg["actor_grad"][kind] == "backprop"
        self.policy = policies.make_policy(act_space, straight_through=self.backprop, **cfg["policy"])
        self.scalar = heads.SCALAR_OUTPUTS[cfg["heads"]["scalar"]](cfg["heads"]["bins"])
        self.codec, self.layer = codecs.CodecConfig.from_agent(cfg), nets.Layer(**cfg["layers"])
        token_dim = codecs.encoder_out_dim(self.spec, self.codec)
        self.rssm = rssm.RSSM(rssm.RSSMConfig(**cfg["rssm"]), token_dim, self.policy.act_dim, self.layer)
        self.opt = optim.make_optimizer(cfg["optimizer"])
        # Compiled once per equal config and spaces, as learner.Learner's steps.
        self._identity = (type(self), json.dumps(cfg, sort_keys=True, default=str), repr(obs_space), repr(act_space))
        self.train_step = partial(learner._train_step, self)
        self.policy_step = partial(learner._policy_step, self)

    def init(self, key: jax.Array) -> TrainState:
        return {**super().init(key), "updates": jnp.zeros((), jnp.int32)}

    # ----- learning --------------------------------------------------------------------------------

    def _continue(self, p: nets.Params, feat: jax.Array) -> jax.Array:
        """Probability of continuing times gamma, for each imagined state."""
        disc = 1.0 - 1.0 / self.cfg["horizon"]
        if not self.cfg["cont_head"]:
            return jnp.full(feat.shape[:-1], disc, jnp.float32)
        prob = jax.nn.sigmoid(heads.head(p["con"], feat)[..., 0])
        return prob if self.cfg["contdisc"] else disc * (prob > 0.5).astype(jnp.float32)

    def rollout(self, p: nets.Params, states: dict, key: jax.Array) -> tuple[dict, jax.Array, jax.Array]:
        """Imagine from every posterior state: (states, actions, features), leaves (N, H + 1, ...).

        The actor sees stop-gradient features. Under dynamics backprop its samples are reparameterised
        and the world model is applied with stop-gradient parameters, so the features carry the actor's
        gradient and nothing else; under REINFORCE the whole rollout is constant.
        """
        frozen = sg(p)
        actor = p["pol"] if self.backprop else frozen["pol"]
        start = jax.tree.map(lambda x: sg(x).reshape(-1, x.shape[-1]), states)
        policy_fn = lambda s, k: self.policy.sample(k, heads.head(actor, sg(self.rssm.feat(s))))  # noqa: E731
        img_step = partial(self.rssm.img_step, frozen["dyn"])
        img_states, img_act = behavior.imagine(start, policy_fn, img_step, self.cfg["imag_horizon"], key)
        return img_states, img_act, self.rssm.feat(img_states)

    def _imagine(self, p: nets.Params, slow: nets.Params, retnorm: dict, states: dict, key: jax.Array):
        cfg, frozen = self.cfg, sg(p)
        _, img_act, img_feat = self.rollout(p, states, key)
        rew = self.scalar.mean(heads.head(frozen["rew"], img_feat))
        con = self._continue(frozen, img_feat)
        critic = slow if cfg["critic_target"] == "slow" else frozen["val"]
        boot = self.scalar.mean(heads.head(critic, img_feat))
        weight = sg(jnp.cumprod(con, 1))
        ret = behavior.lambda_return(jnp.zeros_like(con), 1.0 - con, rew, boot, 1.0, cfg["lam"])
        norm = cfg["retnorm"]
        retnorm = behavior.retnorm_update(retnorm, ret, norm["rate"], norm["lo"], norm["hi"])
        scale = behavior.retnorm_scale(retnorm, norm["limit"])

        pol_out = heads.head(p["pol"], sg(img_feat))
        entropy = self.policy.entropy(pol_out)[:, :-1]
        if self.backprop:
            objective = (ret - (boot[:, :-1] if cfg["backprop_baseline"] else 0.0)) / scale
        else:
            objective = self.policy.logp(pol_out, sg(img_act))[:, :-1] * sg((ret - boot[:, :-1]) / scale)
        policy = -weight[:, :-1] * (objective + cfg["actent"] * entropy)

        val_out = heads.head(p["val"], sg(img_feat))
        target = jnp.concatenate([sg(ret), jnp.zeros_like(ret[:, -1:])], 1)
        slow_mean = self.scalar.mean(heads.head(slow, sg(img_feat)))
        value = self.scalar.loss(val_out, target) + cfg["slowreg"] * self.scalar.loss(val_out, sg(slow_mean))
        value = weight[:, :-1] * value[:, :-1]
        return {"policy": policy, "value": value}, retnorm, ret, entropy

    def _loss(self, params: dict, slow_val: dict, retnorm: dict, data: dict, key: jax.Array):
        cfg, scales = self.cfg, self.cfg["loss_scales"]
        p, slow = nets.cast_params(params, self.dtype), nets.cast_params(slow_val, self.dtype)
        k_obs, k_img = jax.random.split(key)
        obs = {k: data[k][:, 1:] for k in self.spec}
        reward, last, term = (data[k][:, 1:].astype(jnp.float32) for k in ("reward", "is_last", "is_terminal"))
        reward = REWARD_TRANSFORMS[cfg["reward_transform"]](reward)
        carry, prevacts = {"deter": data["deter"], "stoch": data["stoch"]}, data["action"][:, :-1]
        if not cfg["latent_replay"]:
            carry = jax.tree.map(jnp.zeros_like, carry)
            prevacts = jnp.asarray(prevacts).at[:, 0].set(0.0)
        tokens = codecs.encode(p["enc"], obs, self.spec, self.dtype)
        _, states, post = self.rssm.observe(p["dyn"], carry, tokens, prevacts, data["is_first"][:, 1:], k_obs)
        prior = self.rssm.prior(p["dyn"], states["deter"])
        feat = self.rssm.feat(states)
        B, T = reward.shape
        disc = 1.0 - 1.0 / cfg["horizon"]

        decoded = codecs.decode_losses(p["dec"], states["deter"], states["stoch"], obs, self.spec)
        losses = {f"rec_{k}": v for k, v in decoded.items()}
        losses["rew"] = self.scalar.loss(heads.head(p["rew"], feat), reward)
        if cfg["cont_head"]:
            con_target = (1.0 - term) * (disc if cfg["contdisc"] else 1.0)
            losses["con"] = binary_loss(heads.head(p["con"], feat)[..., 0], con_target)
        losses.update(kl.kl_losses(self.rssm.latent.kl, post, prior, cfg["free_nats"], cfg["free_avg"]))
        imag, retnorm, ret, entropy = self._imagine(p, slow, retnorm, states, k_img)
        losses.update(imag)
        if scales["repval"]:  # V3's critic on replayed states, gradient into the world model
            rep_out = heads.head(p["val"], feat)
            losses["repval"] = behavior.replay_value_loss(
                last, term, reward, ret[:, 0].reshape(B, T),
                val_loss=partial(self.scalar.loss, rep_out),
                slow_val=self.scalar.mean(heads.head(slow, sg(feat))),
                disc=disc, lam=cfg["lam"], slowreg=cfg["slowreg"],
            )

        means = {k: v.mean() for k, v in losses.items()}
        total = sum(scales["rec" if k.startswith("rec_") else k] * v for k, v in means.items())
        metrics = {f"loss/{k}": v for k, v in means.items()}
        metrics.update({
            "ret": ret.mean(), "ret_scale": behavior.retnorm_scale(retnorm, cfg["retnorm"]["limit"]),
            "policy_entropy": entropy.mean(),
            "post_entropy": self.rssm.latent.entropy(post).mean(),
            "prior_entropy": self.rssm.latent.entropy(prior).mean(),
        })
        latents = {k: sg(v).astype(jnp.float16) for k, v in states.items()}
        return total, (metrics, retnorm, latents)

    def _train_step(self, state: TrainState, data: dict, key: jax.Array):
        grad_fn = jax.value_and_grad(self._loss, has_aux=True)
        (total, (metrics, retnorm, latents)), grads = grad_fn(
            state["params"], state["slow_val"], state["retnorm"], data, key
        )
        updates, opt_state = self.opt.update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        # The slow critic moves by slow_rate every slow_every updates (V2: a full copy every 100).
        rate = jnp.where(state["updates"] % self.cfg["slow_every"] == 0, self.cfg["slow_rate"], 0.0)
        slow = jax.tree.map(lambda s, v: (1.0 - rate) * s + rate * v, state["slow_val"], params["val"])
        metrics.update({"loss/total": total, "grad_norm": optax.tree.norm(grads)})
        new_state = {"params": params, "slow_val": slow, "opt": opt_state, "retnorm": retnorm,
                     "updates": state["updates"] + 1}
        return new_state, metrics, latents
