"""Our DreamerV3 against the official code under mixed precision: compute dtype bfloat16 on both sides
(ours `compute_dtype: bfloat16`, official `jax.compute_dtype: bfloat16`), parameters float32, on the
CPU, with the float32 set's weights, batch and draws (test_equivalence.py), in its vector and image
configurations. Select with `pytest -m "official and bfloat16"`.

Two kinds of comparison, because bfloat16 (8 bits of mantissa: a cast rounds by up to 2^-9 = 0.2%
relative, one unit in the last place, ulp, is 2^-8 = 0.39% of the value's power of two) makes a
sequence chaotic:

**Network by network, on the same inputs** (`same_inputs`): each network of ours applied to the official
side's own inputs (its tokens, states and actions along the sequence and the imagination) is compared
with the official output in bfloat16 ulps. Where both sides cast at the same points, a matmul rounds
its float32 sum once to bfloat16 on both, and the outputs agree bit for bit (measured: every token,
deter, posterior and prior logit, imagined deter and policy step, both configurations; `ULPS` allows
one ulp in `STRAY` of the entries for an accumulation order another XLA may choose). A cast placed
elsewhere on one side rounds another value, and about half of the entries downstream round the other
way: moving one cast of ours (a layer's matmul in float32, see docs/internals/equivalence.md) fails
these tests. The losses computed from those outputs (per step, before averaging) are float32 and agree
at the float32 set's tolerances.

**End to end** (the float32 set's quantities, along the whole sequence and through the update): the
rounding differences of the two XLA versions' fused elementwise chains (one ulp in a few entries)
grow along the sequence, and a latent's mode (an argmax over 32 bfloat16 logits, often within an
ulp of each other) flips, which changes the sampled one-hot and everything after it by O(1). These
are compared with tolerances at the measured spread, which catch a wrong term or sign, not a cast;
each tolerance is next to what was measured.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import test_equivalence as f32set
from agents.dreamer import codecs, dists, heads, kl, nets
from agents.dreamer.dists import binary_loss
from agents.official import mapping

pytestmark = [pytest.mark.official, pytest.mark.bfloat16]
DTYPE = "bfloat16"
CASES = {name: f32set.CASES[name] for name in ("vector", "image")}
B, T = f32set.B, f32set.T
ULPS, STRAY = 1, 0.01  # same inputs: at most one ulp apart, in at most 1% of the entries


def same_bits(ours, official, what: str) -> None:
    """Equal but in `STRAY` of the entries, by at most `ULPS` ulps of the largest entry (an accumulation
    order, or a stray rounding carried on: 0.03% of the imagined deters, measured); a moved cast
    changes a third or more of them (the module docstring)."""
    ours, official = np.asarray(ours, np.float64), np.asarray(official, np.float64)
    assert ours.shape == official.shape, f"{what}: shapes {ours.shape} vs {official.shape}"
    differ = ours != official
    exponent = np.floor(np.log2(max(np.abs(official).max(initial=0.0), 2.0 ** -126)))
    largest = np.abs(ours - official).max(initial=0.0) / 2.0 ** (exponent - 7)  # in ulps of the largest entry
    assert differ.mean() <= STRAY and largest <= ULPS, (
        f"{what}: {differ.mean():.1%} of {differ.size} entries differ, up to {largest:.3g} ulps of the largest")


def spread(ours, official, what: str, bound: float) -> None:
    """End to end: the norm of the difference at most `bound` of the official norm (the measured spread)."""
    ours, official = np.asarray(ours, np.float64), np.asarray(official, np.float64)
    assert ours.shape == official.shape, f"{what}: shapes {ours.shape} vs {official.shape}"
    norm = max(np.linalg.norm(official), 1e-30)
    assert np.linalg.norm(ours - official) <= bound * norm, (
        f"{what}: difference {np.linalg.norm(ours - official) / norm:.3g} of its norm, bound {bound}")


def same_inputs(learner, state: dict, data: dict, official: dict, case: f32set.Case) -> dict:
    """Our networks on the official side's inputs (see the module docstring); returns our outputs."""
    p = nets.cast_params(jax.tree.map(jnp.asarray, state["params"]), learner.dtype)
    dtype, classes = learner.dtype, learner.cfg["rssm"]["classes"]
    flat = lambda x: x.reshape(-1, *x.shape[2:])  # noqa: E731
    onehot = lambda logit: jax.nn.one_hot(jnp.argmax(logit, -1), classes).reshape(*logit.shape[:-2], -1)  # noqa: E731
    # the official posterior states along the sequence, and the states each step starts from
    deter, stoch = jnp.asarray(official["deter"], dtype), onehot(official["post_logit"]).astype(dtype)
    context = {"deter": jnp.asarray(data["deter"])[:, None], "stoch": jnp.asarray(data["stoch"])[:, None]}
    before = {"deter": jnp.concatenate([context["deter"].astype(dtype), deter[:, :-1]], 1),
              "stoch": jnp.concatenate([context["stoch"].astype(dtype), stoch[:, :-1]], 1)}
    tokens = jnp.asarray(official["tokens"], dtype)
    step, _ = learner.rssm.obs_step(p["dyn"], jax.tree.map(flat, before), flat(jnp.asarray(data["action"][:, :-1])),
                                    flat(tokens), flat(jnp.asarray(data["is_first"][:, 1:])), jax.random.PRNGKey(0))
    post_in = nets.mlp(p["dyn"]["post"], jnp.concatenate([deter, tokens], -1))
    out = {"deter": step["deter"].reshape(deter.shape),
           "post_logit": nets.linear(p["dyn"]["post_out"], post_in),
           "prior_logit": nets.linear(p["dyn"]["prior_out"], nets.mlp(p["dyn"]["prior"], deter))}
    # the world-model losses per step on the official states
    obs = {k: jnp.asarray(data[k][:, 1:]) for k in learner.spec}
    feat = learner.rssm.feat({"deter": deter, "stoch": stoch})
    losses = {f"rec_{k}": v for k, v in codecs.decode_losses(p["dec"], deter, stoch, obs, learner.spec).items()}
    losses["rew"] = learner.scalar.loss(heads.head(p["rew"], feat), jnp.asarray(data["reward"][:, 1:]))
    disc = 1.0 - 1.0 / learner.cfg["horizon"]
    losses["con"] = binary_loss(heads.head(p["con"], feat)[..., 0], (1.0 - data["is_terminal"][:, 1:]) * disc)
    post = dists.unimix_logits(jnp.asarray(official["post_logit"]), learner.rssm.latent.unimix)
    prior = dists.unimix_logits(jnp.asarray(official["prior_logit"]), learner.rssm.latent.unimix)
    losses.update(kl.kl_losses(learner.rssm.latent.kl, post, prior, learner.cfg["free_nats"], False))
    out["losses"] = losses
    # the imagination from the official states: start (the posterior states), then H imagined ones
    img = {"deter": jnp.concatenate([flat(deter)[:, None], jnp.asarray(official["imag/deter"], dtype)], 1),
           "stoch": jnp.concatenate([flat(stoch)[:, None], onehot(official["imag/stoch"]).astype(dtype)], 1)}
    act = official["imag/act"]
    act = jnp.asarray(np.eye(case.actions, dtype=np.float32)[act] if case.actions else act)
    nxt = learner.rssm.img_step(p["dyn"], jax.tree.map(lambda x: flat(x[:, :-1]), img), flat(act[:, :-1]),
                                jax.random.PRNGKey(0))
    out["imag/deter"] = nxt["deter"].reshape(official["imag/deter"].shape)
    img_feat = learner.rssm.feat(img)
    pol = heads.head(p["pol"], img_feat)
    if case.actions:
        out["imag/act"] = learner.policy.mode(pol)
    else:
        mean, std = dists.bounded_normal(pol, learner.policy.minstd, learner.policy.maxstd)
        out["imag/act"] = mean + f32set.POLICY_NOISE * std
    out["imag/rew"] = learner.scalar.mean(heads.head(p["rew"], img_feat))
    out["imag/con"] = learner._continue(p, img_feat)
    out["imag/act_official"] = act
    return jax.tree.map(np.asarray, out)


@pytest.fixture(scope="module", params=list(CASES))
def compared(request, official_python, tmp_path_factory):
    case = CASES[request.param]
    tmp = tmp_path_factory.mktemp(f"official_{request.param}_{DTYPE}")
    learner = f32set.our_learner(case, DTYPE)
    state = f32set.informative(learner.init(jax.random.PRNGKey(0)))
    official = mapping.to_official(state["params"], state["slow_val"],
                                   f32set.official_shapes(official_python, tmp, case, DTYPE))
    data = f32set.batch(learner, case)
    inputs = f32set.policy_inputs(data, case)
    outputs = f32set.run_official(official_python, tmp, case, official, f32set.official_batch(data, learner, case),
                                  f32set.official_policy_inputs(inputs, learner, case), DTYPE)
    with pytest.MonkeyPatch.context() as monkeypatch:
        f32set.mode_sampling(monkeypatch, learner)
        ours = f32set.our_side(learner, state, data, inputs)
        ours["same_inputs"] = same_inputs(learner, state, data, outputs, case)
    return learner, state, ours, outputs, case


# ----- network by network, on the same inputs ------------------------------------------------------


def test_encoder_outputs(compared):
    _, _, ours, official, _ = compared
    same_bits(ours["tokens"], official["tokens"], "encoder tokens")


def test_rssm_step_posterior_and_prior_on_the_same_states(compared):
    """Every step of the sequence from the official state before it: the block GRU's deter, the posterior
    logits (from the official deter and tokens) and the prior logits, before unimix (raw bfloat16)."""
    _, _, ours, official, _ = compared
    mine = ours["same_inputs"]
    same_bits(mine["deter"], official["deter"], "deter")
    same_bits(mine["post_logit"].reshape(official["post_logit"].shape), official["post_logit"], "posterior logits")
    same_bits(mine["prior_logit"].reshape(official["prior_logit"].shape), official["prior_logit"], "prior logits")


# Open: the reward head's 255 logits (its bias peaked at -0.3 |i - 127|, up to -38) are not bit-equal
# (the con head's are); one-ulp differences, consistent with one XLA rounding the matmul before adding
# the bias and the other after. Measured: reward loss 8.8e-4 (vector) and 1.6e-3 (image) relative, the
# imagined rewards (twohot means cancelling to 1e-2) 0.124 and 0.137 of the largest; the image loss
# 2.9e-4 relative (the upsampling convolutions sum a kernel's taps before rounding it, the official code
# rounds each tap: nets.upsample_conv).
SAME_INPUT_LOSSES = {"rew": (2e-3, 2e-3), "rec_image": (1e-3, 1e-3)}
IMAGINED_REWARDS = (0.2, 0.2)
# The official std is a chain of four bfloat16 ops (s + 2 rounds at 2^-6 in [2, 4)), ours float32 (dists.
# bounded_normal): 2.5 ulps of a std near 1 (measured: 7.8e-3 relative on the imagined actions, 6.6e-4 on
# the policy step's two); the mean is bit-equal.
STD_CHAIN = (1e-2, 1e-5)


@pytest.mark.parametrize("term", ["rec", "rew", "con", "dyn", "rep"])
def test_world_model_loss_terms_per_step_on_the_same_states(compared, term):
    """The per-step (B, T) losses of the heads and the KL on the official states: float32 computations on
    bit-equal bfloat16 network outputs, so at the float32 set's tolerance (relative 1e-5)."""
    _, _, ours, official, case = compared
    names = {f"rec_{k}": k for k in case.obs} if term == "rec" else {term: term}
    for our_name, official_name in names.items():
        tolerance = SAME_INPUT_LOSSES.get(our_name, (f32set.RTOL, 1e-6))
        f32set.close(ours["same_inputs"]["losses"][our_name], official[f"loss/{official_name}"], our_name, tolerance)


def test_imagination_step_on_the_same_states(compared):
    """From every official imagined state and action: the next deter, the action (the fixed draw), the
    reward (a twohot mean: the float32 set's `LOOSE`) and the continue probability."""
    _, _, ours, official, _ = compared
    mine = ours["same_inputs"]
    same_bits(mine["imag/deter"], official["imag/deter"], "imagined deter")
    f32set.close(mine["imag/act"], mine["imag/act_official"], "imagined actions", STD_CHAIN)
    f32set.close(mine["imag/rew"], official["imag/rew"], "imagined rewards", IMAGINED_REWARDS)
    f32set.close(mine["imag/con"], official["imag/con"], "imagined continue probabilities")


def test_policy_step(compared):
    """One policy step from the same latent and observations: the distribution, the action (the fixed
    draw), the new latent. Distribution and action are float32 from bit-equal bfloat16 outputs."""
    _, _, ours, official, case = compared
    policy = ours["policy"]
    for name in ("logp",) if case.actions else ("mean", "stddev"):
        f32set.close(policy[name], official[f"policy/{name}"], f"policy {name}", STD_CHAIN)
    action = official["policy/action"]
    f32set.close(policy["action"], np.eye(case.actions, dtype=np.float32)[action] if case.actions else action,
                 "policy action", STD_CHAIN)
    same_bits(policy["deter"], official["policy/deter"], "policy deter")
    same_bits(policy["stoch"], official["policy/stoch"].reshape(B, -1), "policy stoch")


# ----- end to end ----------------------------------------------------------------------------------

# The bound on the norm of the difference over the official norm; measured, worst of vector and image.
END_TO_END = {
    "deter": 0.01,  # 0: the posterior deters are bit-equal along the sequence
    "loss": 2e-3,  # 2.2e-4 (the reward loss; every other term 1e-4 or less)
    "policy": 0.3,  # 0.082: the returns and advantages carry the imagined rewards' spread (above)
    "gradients": 0.5,  # 0.18 (the first conv's bias; the median tensor 0.006)
    "moved": 0.5,  # 0.20 by step 10 (the median tensor 0.044 vector, 0.077 image)
}


@pytest.mark.parametrize("term", ["rec", "rew", "con", "dyn", "rep", "policy", "value", "repval"])
def test_loss_terms(compared, term):
    _, _, ours, official, case = compared
    names = {f"rec_{k}": k for k in case.obs} if term == "rec" else {term: term}
    bound = END_TO_END["policy" if term == "policy" else "loss"]
    for our_name, official_name in names.items():
        spread(ours["metrics"][f"loss/{our_name}"], official[f"loss/{official_name}"].mean(), our_name, bound)


def test_total_loss_and_states_along_the_sequence(compared):
    _, _, ours, official, _ = compared
    spread(ours["total"], official["loss_total"], "total loss", END_TO_END["loss"])
    spread(ours["deter"], official["deter"], "deter", END_TO_END["deter"])


def test_gradient_of_every_parameter(compared):
    _, state, ours, official, _ = compared
    grads = {k.removeprefix("grad/"): v for k, v in official.items() if k.startswith("grad/")}
    grads.update({k.replace("val/", "slowval/", 1): np.zeros_like(v) for k, v in grads.items() if k.startswith("val/")})
    theirs, _ = mapping.to_ours(grads, state["params"], state["slow_val"])
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(ours["grads"])[0], jax.tree.leaves(theirs)):
        spread(a, b, f"gradient {jax.tree_util.keystr(path)}", END_TO_END["gradients"])


@pytest.mark.parametrize("step", [1, f32set.STEPS])
def test_parameters_after_warmup_steps(compared, step):
    """The change from the initial parameters (step 1 moves only the slow critic)."""
    _, state, ours, official, _ = compared
    after = {k.removeprefix(f"after{step}/"): v for k, v in official.items() if k.startswith(f"after{step}/")}
    params, slow = mapping.to_ours(after, state["params"], state["slow_val"])
    mine = ours["after"][step]
    for name, a_tree, b_tree, start in (("params", mine["params"], params, state["params"]),
                                        ("slow", mine["slow_val"], slow, state["slow_val"])):
        leaves = zip(jax.tree_util.tree_flatten_with_path(a_tree)[0], jax.tree.leaves(b_tree), jax.tree.leaves(start))
        for (path, a), b, s in leaves:
            moved_ours, moved_official = np.asarray(a, np.float64) - s, np.asarray(b, np.float64) - s
            # a float32 parameter moves in steps of its ulp: two per step are rounding (the float32 set),
            # all a tensor moves where the update is zero (step 1's slow copies of equal tensors)
            rounding = 2.4e-7 * step * np.abs(np.asarray(s)).max() * np.sqrt(s.size)
            difference = np.linalg.norm(moved_ours - moved_official)
            assert difference <= END_TO_END["moved"] * np.linalg.norm(moved_official) + rounding, (
                f"{name} {jax.tree_util.keystr(path)} by step {step}: difference {difference:.3g}, "
                f"official move {np.linalg.norm(moved_official):.3g}")
