"""Recurrent state-space model (the DreamerV3 paper, arXiv:2301.04104, and danijar/dreamerv3 @ e3f0224):
deterministic core + stochastic latent.

The state is `{"deter": (B, deter), "stoch": (B, stoch * classes)}`; features for the heads are their
concatenation. Two pieces are chosen by config so other Dreamer versions can plug in their own:
`core` (how deter is updated; 'blockgru' for V3) and `latent` (the stochastic state's distribution;
'categorical' for V3). A latent provides `stats` (network output -> distribution statistics),
`sample`, `mode`, `kl` and `entropy`; everything else in this file is shared. The dense layers (the
cores' input layers, prior and posterior) use the `Layer` given to `RSSM` (V3: RMSNorm, SiLU). The
state a sequence starts from on `is_first` is zeros (`initial: zeros`, V1, V2, V3 2024) or, with
`initial: learned` (V3-2023), deter = tanh(a learned vector) and stoch = the mode of its prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from agents.dreamer import dists, nets
from agents.dreamer.gaussian import GaussianLatent
from agents.dreamer.gru import gru, gru_init, gru_nonorm_init

sg = jax.lax.stop_gradient


@dataclass(frozen=True)
class RSSMConfig:
    deter: int
    hidden: int
    classes: int
    stoch: int = 32
    blocks: int = 8
    unimix: float = 0.01
    imglayers: int = 2
    obslayers: int = 1
    core: str = "blockgru"
    latent: str = "categorical"
    initial: str = "zeros"


# ----- latents -------------------------------------------------------------------------------------


class CategoricalLatent:
    """`stoch` one-hot variables of `classes` classes with unimix and straight-through samples."""

    def __init__(self, cfg: RSSMConfig):
        self.stoch, self.classes, self.unimix = cfg.stoch, cfg.classes, cfg.unimix
        self.out_dim = self.flat_dim = cfg.stoch * cfg.classes

    def stats(self, out: jax.Array) -> jax.Array:
        logits = out.astype(jnp.float32).reshape(*out.shape[:-1], self.stoch, self.classes)
        return dists.unimix_logits(logits, self.unimix)

    def sample(self, key: jax.Array, stats: jax.Array) -> jax.Array:
        sample = dists.onehot_sample(key, stats)
        return sample.reshape(*sample.shape[:-2], self.flat_dim)

    def mode(self, stats: jax.Array) -> jax.Array:
        mode = jax.nn.one_hot(jnp.argmax(stats, -1), self.classes, dtype=jnp.float32)
        return mode.reshape(*mode.shape[:-2], self.flat_dim)

    def kl(self, p: jax.Array, q: jax.Array) -> jax.Array:
        return dists.categorical_kl(p, q).sum(-1)

    def entropy(self, stats: jax.Array) -> jax.Array:
        return dists.categorical_entropy(stats).sum(-1)


LATENTS = {"categorical": CategoricalLatent, "gaussian": GaussianLatent}  # gaussian: DreamerV1


# ----- cores ---------------------------------------------------------------------------------------


def block_gru_init(
    key: jax.Array, cfg: RSSMConfig, stoch_dim: int, act_dim: int, layer: nets.Layer
) -> nets.Params:
    """V3's block GRU; `layer` applies to its three input layers, its hidden layer is V3's."""
    k = jax.random.split(key, 5)
    group_in = 3 * cfg.hidden + cfg.deter // cfg.blocks
    return {
        "in_deter": nets.dense_init(k[0], cfg.deter, cfg.hidden, layer),
        "in_stoch": nets.dense_init(k[1], stoch_dim, cfg.hidden, layer),
        "in_action": nets.dense_init(k[2], act_dim, cfg.hidden, layer),
        "hidden": {
            "lin": nets.block_linear_init(k[3], group_in * cfg.blocks, cfg.deter, cfg.blocks),
            "norm": nets.norm_init(cfg.deter),
        },
        "gates": nets.block_linear_init(k[4], cfg.deter, 3 * cfg.deter, cfg.blocks),
    }


def block_gru(p: nets.Params, deter: jax.Array, stoch: jax.Array, action: jax.Array) -> jax.Array:
    """One step of the block GRU: 8 groups, each sees the shared inputs and its own slice of deter.

    Each group's hidden layer is Linear(concat(deter slice, shared)); the shared part of all groups is
    applied as one dense matmul instead of copying the shared inputs into every group. The two products
    are summed in float32 and rounded to the compute dtype once, as the official single matmul rounds
    its output (rounding each, then their sum, differed from it in bfloat16: the equivalence test)."""
    w, bias = p["hidden"]["lin"]["w"], p["hidden"]["lin"]["b"]
    blocks, group_in, group_out = w.shape
    d = deter.shape[-1] // blocks
    x = jnp.concatenate(
        [nets.dense(p["in_deter"], deter), nets.dense(p["in_stoch"], stoch), nets.dense(p["in_action"], action)], -1
    )
    w_shared = w[:, d:].transpose(1, 0, 2).reshape(group_in - d, blocks * group_out)
    y = nets.block_matmul(w[:, :d], deter) + jnp.matmul(x, w_shared.astype(x.dtype), preferred_element_type=jnp.float32)
    x = y.astype(x.dtype) + bias.astype(x.dtype)
    x = nets.norm_act(p["hidden"]["norm"], x)
    gates = nets.block_linear(p["gates"], x).reshape(*deter.shape[:-1], blocks, 3, -1)
    reset, cand, update = (gates[..., i, :].reshape(deter.shape) for i in range(3))
    reset = jax.nn.sigmoid(reset)
    cand = jnp.tanh(reset * cand)
    update = jax.nn.sigmoid(update - 1.0)
    return update * cand + (1.0 - update) * deter


CORES = {
    "blockgru": (block_gru_init, block_gru),
    "gru": (gru_init, gru),  # DreamerV2 and the 2023 V3 code (gru.py)
    "gru_nonorm": (gru_nonorm_init, gru),  # DreamerV1
}


# ----- the model -----------------------------------------------------------------------------------


INITIALS = ("zeros", "learned")


class RSSM:
    def __init__(self, cfg: RSSMConfig, token_dim: int, act_dim: int, layer: nets.Layer = nets.V3_LAYER):
        for name, table in (("core", CORES), ("latent", LATENTS), ("initial", INITIALS)):
            if getattr(cfg, name) not in table:
                raise ValueError(f"unknown rssm.{name} '{getattr(cfg, name)}'; valid: {', '.join(table)}")
        self.cfg, self.token_dim, self.act_dim, self.layer = cfg, token_dim, act_dim, layer
        self.latent = LATENTS[cfg.latent](cfg)
        self._core_init, self._core = CORES[cfg.core]
        self.feat_dim = cfg.deter + self.latent.flat_dim

    def init(self, key: jax.Array) -> nets.Params:
        cfg, k, layer = self.cfg, jax.random.split(key, 5), self.layer
        params = {
            "core": self._core_init(k[0], cfg, self.latent.flat_dim, self.act_dim, layer),
            "prior": nets.mlp_init(k[1], cfg.deter, cfg.hidden, cfg.imglayers, layer),
            "prior_out": nets.linear_init(k[2], cfg.hidden, self.latent.out_dim),
            "post": nets.mlp_init(k[3], cfg.deter + self.token_dim, cfg.hidden, cfg.obslayers, layer),
            "post_out": nets.linear_init(k[4], cfg.hidden, self.latent.out_dim),
        }
        if cfg.initial == "learned":
            params["initial"] = jnp.zeros(cfg.deter, jnp.float32)
        return params

    def initial(self, batch: int) -> dict[str, jax.Array]:
        return {
            "deter": jnp.zeros((batch, self.cfg.deter), jnp.float32),
            "stoch": jnp.zeros((batch, self.latent.flat_dim), jnp.float32),
        }

    def learned_initial(self, p: nets.Params) -> dict[str, jax.Array]:
        """The learned start state (V3-2023), shapes (1, deter) and (1, stoch): deter = tanh(parameter),
        stoch = the mode of its prior (no gradient through the mode)."""
        deter = jnp.tanh(p["initial"])[None]
        return {"deter": deter, "stoch": self.latent.mode(self.prior(p, deter)).astype(deter.dtype)}

    def prior(self, p: nets.Params, deter: jax.Array) -> jax.Array:
        return self.latent.stats(nets.linear(p["prior_out"], nets.mlp(p["prior"], deter)))

    def posterior(self, p: nets.Params, deter: jax.Array, tokens: jax.Array) -> jax.Array:
        x = nets.mlp(p["post"], jnp.concatenate([deter, tokens.astype(deter.dtype)], -1))
        return self.latent.stats(nets.linear(p["post_out"], x))

    def step(self, p: nets.Params, carry: dict, action: jax.Array) -> jax.Array:
        """The next deter from the carry and the action taken there (actions scaled to |a| <= 1)."""
        action = action / sg(jnp.maximum(1.0, jnp.abs(action)))
        dtype = carry["deter"].dtype
        return self._core(p["core"], carry["deter"], carry["stoch"].astype(dtype), action.astype(dtype))

    def obs_step(
        self, p: nets.Params, carry: dict, prevact: jax.Array, tokens: jax.Array, is_first: jax.Array, key: jax.Array
    ) -> tuple[dict, jax.Array]:
        """Reset on is_first, advance the core, and sample the posterior; returns (carry, post stats)."""
        keep = (1.0 - is_first.astype(jnp.float32))[:, None]
        carry = {k: v * keep.astype(v.dtype) for k, v in carry.items()}
        if self.cfg.initial == "learned":
            first, start = 1.0 - keep, self.learned_initial(p)
            carry = {k: v + first.astype(v.dtype) * start[k].astype(v.dtype) for k, v in carry.items()}
        deter = self.step(p, carry, prevact * keep.astype(prevact.dtype))
        post = self.posterior(p, deter, tokens)
        stoch = self.latent.sample(key, post).astype(deter.dtype)
        return {"deter": deter, "stoch": stoch}, post

    def observe(
        self, p: nets.Params, carry: dict, tokens: jax.Array, prevacts: jax.Array, is_first: jax.Array, key: jax.Array
    ) -> tuple[dict, dict, jax.Array]:
        """Filter a (B, T) sequence; returns (last carry, states with (B, T, ...) leaves, post stats)."""

        def body(carry, xs):
            token, prevact, first, k = xs
            carry, post = self.obs_step(p, carry, prevact, token, first, k)
            return carry, (carry, post)

        keys = jax.random.split(key, tokens.shape[1])
        xs = (jnp.swapaxes(tokens, 0, 1), jnp.swapaxes(prevacts, 0, 1), jnp.swapaxes(is_first, 0, 1), keys)
        carry = {k: v.astype(tokens.dtype) for k, v in carry.items()}
        last, (states, post) = jax.lax.scan(body, carry, xs)
        swap = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731
        return last, jax.tree.map(swap, states), swap(post)

    def img_step(self, p: nets.Params, carry: dict, action: jax.Array, key: jax.Array) -> dict:
        deter = self.step(p, carry, action)
        stoch = self.latent.sample(key, self.prior(p, deter)).astype(deter.dtype)
        return {"deter": deter, "stoch": stoch}

    @staticmethod
    def feat(state: dict) -> jax.Array:
        return jnp.concatenate([state["deter"], state["stoch"].astype(state["deter"].dtype)], -1)
