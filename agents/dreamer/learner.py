"""The Dreamer learner: networks, the single loss (spec §1.5), the jitted train and policy steps.

`Learner.train_step(state, batch, key)` is one `jax.jit` (donating the state) that encodes the batch,
filters it through the RSSM with `lax.scan`, computes every world-model loss, imagines from every
posterior state (another `lax.scan`), computes the actor, critic and replay-value losses, applies the
optimiser and the slow-critic EMA. A batch holds B sequences of T + 1 steps: step 0 is the replay
context (its stored latent and action start the filter), steps 1..T are trained on.
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

from agents.dreamer import behavior, codecs, heads, nets
from agents.dreamer.dists import binary_loss
from agents.dreamer.optim import make_optimizer
from agents.dreamer.rssm import RSSM, RSSMConfig

sg = jax.lax.stop_gradient
TrainState = dict[str, Any]


class Learner:
    def __init__(self, cfg: dict[str, Any], obs_space: gym.spaces.Dict, act_space: gym.Space):
        self.cfg = cfg
        self.spec = codecs.obs_spec(obs_space)
        self.dtype = jnp.dtype(cfg["compute_dtype"])
        self.policy = heads.make_policy(act_space, **cfg["policy"])
        scalar = cfg["heads"]["scalar"]
        if scalar not in heads.SCALAR_OUTPUTS:
            raise ValueError(f"unknown heads.scalar '{scalar}'; valid: {', '.join(heads.SCALAR_OUTPUTS)}")
        self.scalar = heads.SCALAR_OUTPUTS[scalar](cfg["heads"]["bins"])
        self.codec, self.layer = codecs.CodecConfig.from_agent(cfg), nets.Layer(**cfg["layers"])
        token_dim = codecs.encoder_out_dim(self.spec, self.codec)
        self.rssm = RSSM(RSSMConfig(**cfg["rssm"]), token_dim, self.policy.act_dim, self.layer)
        self.opt = make_optimizer(cfg["optimizer"])
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
        }

    def initial_carry(self, batch: int) -> dict[str, jax.Array]:
        carry = self.rssm.initial(batch)
        carry["prevact"] = jnp.zeros((batch, self.policy.act_dim), jnp.float32)
        return carry

    # ----- acting ----------------------------------------------------------------------------------

    def _policy_step(
        self, params: dict, carry: dict, obs: dict[str, jax.Array], key: jax.Array
    ) -> tuple[dict, jax.Array]:
        p = nets.cast_params(params, self.dtype)
        k_obs, k_act = jax.random.split(key)
        tokens = codecs.encode(p["enc"], {k: obs[k] for k in self.spec}, self.spec, self.dtype)
        latent = {k: carry[k].astype(self.dtype) for k in ("deter", "stoch")}
        state, _ = self.rssm.obs_step(p["dyn"], latent, carry["prevact"], tokens, obs["is_first"], k_obs)
        action = self.policy.sample(k_act, heads.head(p["pol"], self.rssm.feat(state)))
        new = {"deter": state["deter"].astype(jnp.float32), "stoch": state["stoch"].astype(jnp.float32)}
        return {**new, "prevact": action}, action

    # ----- learning --------------------------------------------------------------------------------

    def _loss(self, params: dict, slow_val: dict, retnorm: dict, data: dict, key: jax.Array):
        cfg, scales = self.cfg, self.cfg["loss_scales"]
        p, slow = nets.cast_params(params, self.dtype), nets.cast_params(slow_val, self.dtype)
        k_obs, k_img = jax.random.split(key)
        obs = {k: data[k][:, 1:] for k in self.spec}
        reward, last, term = (data[k][:, 1:].astype(jnp.float32) for k in ("reward", "is_last", "is_terminal"))
        carry = {"deter": data["deter"], "stoch": data["stoch"]}
        tokens = codecs.encode(p["enc"], obs, self.spec, self.dtype)
        _, states, post = self.rssm.observe(
            p["dyn"], carry, tokens, data["action"][:, :-1], data["is_first"][:, 1:], k_obs
        )
        prior = self.rssm.prior(p["dyn"], states["deter"])
        feat = self.rssm.feat(states)
        B, T = reward.shape

        recon = codecs.decode_losses(p["dec"], states["deter"], states["stoch"], obs, self.spec)
        losses = {f"rec_{k}": v for k, v in recon.items()}
        losses["rew"] = self.scalar.loss(heads.head(p["rew"], feat), reward)
        con_target = (1.0 - term) * (1.0 - 1.0 / cfg["horizon"])
        losses["con"] = binary_loss(heads.head(p["con"], feat)[..., 0], con_target)
        kl = self.rssm.latent.kl
        losses["dyn"] = jnp.maximum(cfg["free_nats"], kl(sg(post), prior))
        losses["rep"] = jnp.maximum(cfg["free_nats"], kl(post, sg(prior)))

        # Imagination from every posterior state; nothing flows back through the rollout (ac_grads off).
        frozen = sg(p)
        start = jax.tree.map(lambda x: sg(x).reshape(B * T, -1), states)
        policy_fn = lambda s, k: self.policy.sample(k, heads.head(frozen["pol"], self.rssm.feat(s)))  # noqa: E731
        img_step = partial(self.rssm.img_step, frozen["dyn"])
        img_states, img_act = behavior.imagine(start, policy_fn, img_step, cfg["imag_horizon"], k_img)
        img_feat = self.rssm.feat(img_states)
        val_out = heads.head(p["val"], img_feat)
        pol_out = heads.head(p["pol"], img_feat)
        imag, retnorm, ret = behavior.imagination_losses(
            rew=self.scalar.mean(heads.head(frozen["rew"], img_feat)),
            con=jax.nn.sigmoid(heads.head(frozen["con"], img_feat)[..., 0]),
            val=self.scalar.mean(val_out),
            val_loss=partial(self.scalar.loss, val_out),
            slow_val=self.scalar.mean(heads.head(slow, img_feat)),
            logpi=self.policy.logp(pol_out, img_act),
            entropy=self.policy.entropy(pol_out),
            retnorm=retnorm,
            lam=cfg["lam"],
            actent=cfg["actent"],
            slowreg=cfg["slowreg"],
            retnorm_cfg=cfg["retnorm"],
        )
        losses.update(imag)

        # Replay value loss: the critic on replayed states, gradient into the world model (repval_grad).
        rep_out = heads.head(p["val"], feat)
        losses["repval"] = behavior.replay_value_loss(
            last, term, reward, ret[:, 0].reshape(B, T),
            val_loss=partial(self.scalar.loss, rep_out),
            slow_val=self.scalar.mean(heads.head(slow, sg(feat))),
            disc=1.0 - 1.0 / cfg["horizon"], lam=cfg["lam"], slowreg=cfg["slowreg"],
        )

        means = {k: v.mean() for k, v in losses.items()}
        total = sum(scales["rec" if k.startswith("rec_") else k] * v for k, v in means.items())
        metrics = {f"loss/{k}": v for k, v in means.items()}
        metrics.update({
            "ret": ret.mean(), "ret_scale": behavior.retnorm_scale(retnorm, cfg["retnorm"]["limit"]),
            "policy_entropy": self.policy.entropy(pol_out).mean(),
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
        rate = self.cfg["slow_rate"]
        slow = jax.tree.map(lambda s, v: (1.0 - rate) * s + rate * v, state["slow_val"], params["val"])
        metrics.update({"loss/total": total, "grad_norm": optax.tree.norm(grads)})
        new_state = {"params": params, "slow_val": slow, "opt": opt_state, "retnorm": retnorm}
        return new_state, metrics, latents


def compile_train_step(learner: Learner, state: TrainState, data: dict, key: jax.Array) -> None:
    """Compile the train step before its first call, then return the compiler's freed heap to the OS.

    XLA:CPU's compiler frees about 0.6 GB of heap at size 1m that glibc's malloc keeps; the step's large
    buffers are fresh mmaps that cannot reuse it, so without the trim the process holds both (peak RSS
    1.56 GB instead of 1.11 GB on DMC at 1m). Later calls of `learner.train_step` reuse this compilation.
    """
    _train_step.lower(learner, state, data, key).compile()
    malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
    if malloc_trim is not None:
        malloc_trim(0)


@partial(jax.jit, static_argnums=0, donate_argnums=1)
def _train_step(learner: Learner, state: TrainState, data: dict, key: jax.Array):
    return learner._train_step(state, data, key)


@partial(jax.jit, static_argnums=0)
def _policy_step(learner: Learner, params: dict, carry: dict, obs: dict, key: jax.Array):
    return learner._policy_step(params, carry, obs, key)
