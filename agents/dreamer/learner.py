"""The Dreamer learner of every preset: networks, the loss (danijar/dreamerv3 @ e3f0224; danijar/dreamerv3 @ 8fa35f8,
danijar/dreamerv2 @ 07d906e and danijar/dreamer @ 56d4d44 for the presets' choices), the jitted train and policy steps.

`Learner.train_step(state, batch, key)` is one `jax.jit` (donating the state) that encodes the batch,
filters it through the RSSM with `lax.scan`, computes the world-model losses, imagines from every
posterior state (another `lax.scan`), computes the actor, critic and replay-value losses, applies the
optimiser and the slow critic's update. A batch holds B sequences of T + 1 steps: step 0 is the replay
context (its stored latent and action start the filter), steps 1..T are trained on. The step runs
data-parallel over the train devices of `agent.devices` (devices.py): the batch split, the state replicated.

Config switches choose the loss; harness/config/agent/dreamerv3.yaml holds V3's choices, docs/reference/presets.md the
table per preset, and `config.validate` checks them:
  policy.dist          bounded_normal | trunc_normal | tanh_normal (continuous actor, policies.py)
  heads.scalar         twohot | twohot_symlog | mse (reward and value outputs, heads.py, scalar_heads.py)
  free_avg             free nats on the batch-mean KL (V1/V2) or free bits per entry (V3), kl.py
  reward_transform     identity | tanh (V2 on Atari and Crafter)
  cont_head, contdisc  learned continue head; gamma folded into its target (V2, V3) or multiplied onto
                       its mode (V3-2023); without the head gamma is constant (V1)
  actor_grad           {discrete, continuous}: reinforce | backprop (dynamics backprop, see `rollout`)
  critic_target        online | slow: the critic that bootstraps the lambda-returns and is the baseline
  backprop_baseline    subtract that critic's value from the backprop objective (V3-2023) or not (V1/V2)
  slow_every, slow_rate  the slow critic moves by slow_rate every slow_every updates (V3: 0.02 every
                       update; V2: a full copy every 100)
  latent_replay        start the filter from the replayed latent (V2, V3) or from zeros (V1)
  loss_scales.repval   V3's critic loss on replayed states; 0 leaves it out (V1, V2, V3-2023)
  optimizer.kind       laprop_agc | adam_per_module (optim.py, adam.py)
The actor never changes the world model: imagination runs on stop-gradient world-model parameters,
so dynamics backprop moves only the actor, as with V1/V2's separate optimisers.
"""

from __future__ import annotations

import ctypes
import json
from functools import partial
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import optax

from agents.dreamer import behavior, codecs, devices, heads, kl, nets, policies
from agents.dreamer.dists import binary_loss
from agents.dreamer.optim import make_optimizer
from agents.dreamer.rssm import RSSM, RSSMConfig

sg = jax.lax.stop_gradient
TrainState = dict[str, Any]

# The valid values of the switches that name a choice (config.validate lists them in its errors).
REWARD_TRANSFORMS = {"identity": lambda r: r, "tanh": jnp.tanh}
ACTOR_GRADS = ("reinforce", "backprop")
CRITIC_TARGETS = ("online", "slow")


class Learner:
    def __init__(self, cfg: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space):
        """`cfg`: an agent config as `config.resolve` returns it (validated, widths filled in)."""
        self.cfg = cfg
        self.spec = codecs.obs_spec(obs_space)
        self.dtype = jnp.dtype(cfg["compute_dtype"])
        kind = "discrete" if isinstance(act_space, gym.spaces.Discrete) else "continuous"
        self.backprop = cfg["actor_grad"][kind] == "backprop"
        self.policy = policies.make_policy(act_space, straight_through=self.backprop, **cfg["policy"])
        self.scalar = heads.SCALAR_OUTPUTS[cfg["heads"]["scalar"]](cfg["heads"]["bins"])
        self.codec, self.layer = codecs.CodecConfig.from_agent(cfg), nets.Layer(**cfg["layers"])
        token_dim = codecs.encoder_out_dim(self.spec, self.codec)
        self.rssm = RSSM(RSSMConfig(**cfg["rssm"]), token_dim, self.policy.act_dim, self.layer)
        self.opt = make_optimizer(cfg["optimizer"])
        self.place = devices.place(cfg["devices"])
        self._identity = (type(self), json.dumps(cfg, sort_keys=True, default=str), repr(obs_space), repr(act_space))
        self.train_step = partial(_train_step, self)
        self.policy_step = partial(_policy_step, self)

    # Learners built from equal configs and spaces are equal, so they share compiled steps.
    def __hash__(self) -> int:
        return hash(self._identity)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Learner) and self._identity == other._identity

    # ----- parameters ------------------------------------------------------------------------------

    def init(self, key: jax.Array) -> TrainState:
        cfg, h = self.cfg, self.cfg["heads"]
        k = jax.random.split(key, 7)

        def head(key: jax.Array, name: str, out_dim: int) -> nets.Params:
            layers, outscale = h[f"{name}_layers"], h["outscale"][name]
            return heads.head_init(key, self.rssm.feat_dim, cfg["units"], layers, out_dim, outscale, self.layer)

        params = {
            "enc": codecs.encoder_init(k[0], self.spec, self.codec),
            "dyn": self.rssm.init(k[1]),
            "dec": codecs.decoder_init(k[2], self.spec, cfg["rssm"]["deter"], self.rssm.latent.flat_dim, self.codec),
            "rew": head(k[3], "reward", self.scalar.out_dim),
            "con": head(k[4], "cont", 1),
            "pol": head(k[5], "policy", self.policy.out_dim),
            "val": head(k[6], "value", self.scalar.out_dim),
        }
        return {
            "params": params,
            "slow_val": jax.tree.map(jnp.copy, params["val"]),
            "opt": self.opt.init(params),
            "retnorm": behavior.retnorm_init(),
            "updates": jnp.zeros((), jnp.int32),  # counts updates for the slow critic's schedule
        }

    def initial_carry(self, batch: int) -> dict[str, jax.Array]:
        carry = self.rssm.initial(batch)
        carry["prevact"] = jnp.zeros((batch, self.policy.act_dim), jnp.float32)
        return carry

    # ----- acting ----------------------------------------------------------------------------------

    def _policy_step(
        self, params: dict, carry: dict, obs: dict[str, jax.Array], key: jax.Array, greedy: bool
    ) -> tuple[dict, jax.Array]:
        p = nets.cast_params(params, self.dtype)
        k_obs, k_act = jax.random.split(key)
        tokens = codecs.encode(p["enc"], {k: obs[k] for k in self.spec}, self.spec, self.dtype)
        latent = {k: carry[k].astype(self.dtype) for k in ("deter", "stoch")}
        state, _ = self.rssm.obs_step(p["dyn"], latent, carry["prevact"], tokens, obs["is_first"], k_obs)
        out = heads.head(p["pol"], self.rssm.feat(state))
        action = self.policy.mode(out) if greedy else self.policy.sample(k_act, out)
        new = {"deter": state["deter"].astype(jnp.float32), "stoch": state["stoch"].astype(jnp.float32)}
        return {**new, "prevact": action}, action

    # ----- learning --------------------------------------------------------------------------------

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

        recon = codecs.decode_losses(p["dec"], states["deter"], states["stoch"], obs, self.spec)
        losses = {f"rec_{k}": v for k, v in recon.items()}
        losses["rew"] = self.scalar.loss(heads.head(p["rew"], feat), reward)
        if cfg["cont_head"]:
            con_target = (1.0 - term) * (disc if cfg["contdisc"] else 1.0)
            losses["con"] = binary_loss(heads.head(p["con"], feat)[..., 0], con_target)
        losses.update(kl.kl_losses(self.rssm.latent.kl, post, prior, cfg["free_nats"], cfg["free_avg"]))
        imag, retnorm, ret, entropy, imag_stats = self._imagine(p, slow, retnorm, states, k_img)
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
            "policy_entropy": entropy[:, :-1].mean(),  # the states the actor loss weighs, as the official metric
            "post_entropy": self.rssm.latent.entropy(post).mean(),
            "prior_entropy": self.rssm.latent.entropy(prior).mean(),
            **imag_stats,
        })
        latents = {k: sg(v).astype(jnp.float32) for k, v in states.items()}  # replay context, as official
        return total, (metrics, retnorm, latents)

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

    def _continue(self, frozen: nets.Params, feat: jax.Array) -> jax.Array:
        """Probability of continuing times gamma, for each imagined state."""
        disc = 1.0 - 1.0 / self.cfg["horizon"]
        if not self.cfg["cont_head"]:
            return jnp.full(feat.shape[:-1], disc, jnp.float32)
        prob = jax.nn.sigmoid(heads.head(frozen["con"], feat)[..., 0].astype(jnp.float32))
        return prob if self.cfg["contdisc"] else disc * (prob > 0.5).astype(jnp.float32)

    def _imagine(self, p: nets.Params, slow: nets.Params, retnorm: dict, states: dict, key: jax.Array):
        """Actor and critic losses on trajectories imagined from `states`; also the new return-scale
        state, the lambda-returns (N, H), the policy entropy (N, H + 1) and scalar diagnostics."""
        cfg, frozen = self.cfg, sg(p)
        _, img_act, img_feat = self.rollout(p, states, key)
        pol_out = heads.head(p["pol"], sg(img_feat))
        val_out = heads.head(p["val"], sg(img_feat))
        slow_val = self.scalar.mean(heads.head(slow, sg(img_feat)))
        slow_target = cfg["critic_target"] == "slow"
        if self.backprop:  # the bootstrap passes the actor's gradient through the features, not the critic's
            boot = self.scalar.mean(heads.head(slow if slow_target else frozen["val"], img_feat))
        else:  # the rollout is constant, so the critics' outputs above serve (computed once)
            boot = slow_val if slow_target else sg(self.scalar.mean(val_out))
        entropy = self.policy.entropy(pol_out)
        losses, retnorm, ret, stats = behavior.imagination_losses(
            rew=self.scalar.mean(heads.head(frozen["rew"], img_feat)),
            con=self._continue(frozen, img_feat),
            boot=boot,
            val_loss=partial(self.scalar.loss, val_out),
            slow_val=slow_val,
            logpi=self.policy.logp(pol_out, sg(img_act)),
            entropy=entropy,
            retnorm=retnorm,
            lam=cfg["lam"],
            actent=cfg["actent"],
            slowreg=cfg["slowreg"],
            retnorm_cfg=cfg["retnorm"],
            backprop=self.backprop,
            backprop_baseline=cfg["backprop_baseline"],
        )
        stats.update(value=sg(self.scalar.mean(val_out)).mean(), slow_value=slow_val.mean())
        return losses, retnorm, ret, entropy, stats

    def _train_step(self, state: TrainState, data: dict, key: jax.Array):
        # Data parallel: with the batch split over the train devices and the state replicated, XLA sums
        # the gradients and every statistic over the batch (means, the return percentiles) across them.
        state, key = jax.lax.with_sharding_constraint((state, key), self.place.replicated)
        data = jax.lax.with_sharding_constraint(data, self.place.batch)
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
        new_state, metrics = jax.lax.with_sharding_constraint((new_state, metrics), self.place.replicated)
        return new_state, metrics, jax.lax.with_sharding_constraint(latents, self.place.batch)

    def compile_train_step(self, state: TrainState, data: dict, key: jax.Array) -> None:
        """Compile the train step before its first call, then return the compiler's freed heap to the OS.

        XLA:CPU's compiler frees about 0.6 GB of heap at size 1m that glibc's malloc keeps; the step's
        large buffers are fresh mmaps that cannot reuse it, so without the trim the process holds both
        (peak RSS 1.56 GB instead of 1.01-1.17 GB on DMC at 1m). `train_step` reuses this compilation.
        """
        _train_step.lower(self, state, data, key).compile()
        malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
        if malloc_trim is not None:
            malloc_trim(0)


@partial(jax.jit, static_argnums=0, donate_argnums=1)
def _train_step(learner: Learner, state: TrainState, data: dict, key: jax.Array):
    return learner._train_step(state, data, key)


@partial(jax.jit, static_argnums=(0, 5))
def _policy_step(learner: Learner, params: dict, carry: dict, obs: dict, key: jax.Array, greedy: bool = False):
    return learner._policy_step(params, carry, obs, key, greedy)
