"""Our DreamerV3 against the official code (dreamer 3.3.1) on identical weights, batch and draws.

The official agent runs in .venv-official (tests/official/official_side.py, in a subprocess); ours here.
Both get the same parameters (ours, mapped onto the official names by agents/official/mapping.py) and
the same batch of B x (T + 1) steps (step 0 is the replay context). Random draws are fixed the same way
on both sides, test-only: latent samples are modes (one-hot argmax with the straight-through gradient),
continuous actions mean + 0.5 x std, discrete actions the argmax. Float32, three configurations
(`CASES`): DMC cartpole shapes (position 3 + velocity 2, one bounded action) and Crafter shapes (a 64x64x3
image, 17 discrete actions), and the DMC cartpole shapes at size 12m.

Tolerance: float32, relative 1e-5, plus an absolute 1e-6 x the largest magnitude of the compared array
for entries that are sums cancelling to near zero (relative error is meaningless there). Looser, 1e-4
and 1e-5 x the largest magnitude (`LOOSE`): what descends from twohot means (imagined rewards,
lambda-returns, the policy loss, gradients and the parameters they move): a mean sum_i p_i b_i over bins
up to +-4.85e8 cancels to values near 1e-3, and the two codes sum in different orders (ours left and right halves, the official a mirrored pairwise sum that XLA
reorders), so its float32 rounding is about 1e-7 absolute; measured worst: returns 4e-8 absolute on
entries near 1e-4, policy loss 1.8e-5 relative, a gradient entry 1.7e-7 absolute (7.8e-5 relative), a
bias after ten steps 1.8e-11 absolute (1.8e-5 relative; zero-initialised, so it is all update).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from agents.dreamer import codecs, config as dreamer_config, dists, heads, nets
from agents.dreamer.learner import Learner
from agents.dreamer.rssm import CategoricalLatent
from agents.official import mapping

pytestmark = pytest.mark.official
REPO = Path(__file__).resolve().parents[2]
SIDE = Path(__file__).with_name("official_side.py")
B, T = 2, 8
POLICY_NOISE = 0.5  # the fixed standard-normal draw of every continuous action
STEPS = 10  # the parameters are compared after the first and the tenth warm-up step
RTOL = 1e-5


@dataclass(frozen=True)
class Case:
    """One configuration both agents are built for: observation shapes, and the number of discrete
    actions (None: one bounded continuous action)."""

    obs: dict[str, tuple[int, ...]]
    actions: int | None = None
    size: str = "1m"

    def is_image(self, key: str) -> bool:
        return len(self.obs[key]) == 3


CASES = {
    "vector": Case({"position": (3,), "velocity": (2,)}),  # DMC cartpole
    "image": Case({"image": (64, 64, 3)}, actions=17),  # Crafter
    "vector12m": Case({"position": (3,), "velocity": (2,)}, size="12m"),
}


LOOSE = (1e-4, 1e-5)


def close(ours, official, what: str, tolerance: tuple[float, float] = (RTOL, 1e-6), scale: float | None = None) -> None:
    """`scale`: the magnitude the absolute bound is a fraction of (default: the largest of `official`)."""
    rtol, scaled_atol = tolerance
    ours, official = np.asarray(ours, np.float64), np.asarray(official, np.float64)
    assert ours.shape == official.shape, f"{what}: shapes {ours.shape} vs {official.shape}"
    atol = scaled_atol * max(np.abs(official).max() if scale is None else scale, 1e-30)
    np.testing.assert_allclose(ours, official, rtol=rtol, atol=atol, err_msg=what)


def our_learner(case: Case, dtype: str = "float32") -> Learner:
    """`dtype`: the compute dtype (parameters stay float32)."""
    cfg = yaml.safe_load((REPO / "harness" / "config" / "agent" / "dreamerv3.yaml").read_text())
    cfg.update(size=case.size, compute_dtype=dtype)
    obs = gym.spaces.Dict({
        k: gym.spaces.Box(0, 255, shape, np.uint8) if case.is_image(k) else
        gym.spaces.Box(-np.inf, np.inf, shape, np.float32) for k, shape in case.obs.items()})
    act = gym.spaces.Discrete(case.actions) if case.actions else gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    return Learner(dreamer_config.resolve(cfg), obs, act)


def settings(case: Case, tmp: Path, dtype: str = "float32") -> dict:
    obs = {k: ["uint8", list(s), 0, 255] if case.is_image(k) else ["float32", list(s)] for k, s in case.obs.items()}
    obs.update(reward=["float32", []], is_first=["bool", []], is_last=["bool", []], is_terminal=["bool", []])
    act = ["int32", [], 0, case.actions] if case.actions else ["float32", [1], -1.0, 1.0]
    flags = {"batch_size": B, "batch_length": T, "jax.compute_dtype": dtype}
    return {"configs": [f"size{case.size}", "cpu"], "flags": flags, "steps": STEPS,
            "obs": obs, "act": {"action": act}, "logdir": str(tmp / "logdir")}


def batch(learner: Learner, case: Case) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    deter, stoch = learner.cfg["rssm"]["deter"], learner.rssm.latent.flat_dim
    classes = learner.cfg["rssm"]["classes"]
    data = {k: rng.integers(0, 256, (B, T + 1, *s), np.uint8) if case.is_image(k) else
            rng.normal(size=(B, T + 1, *s)).astype(np.float32) for k, s in case.obs.items()}
    if case.actions:  # ours are one-hot vectors, the official ones indices
        action = np.eye(case.actions, dtype=np.float32)[rng.integers(0, case.actions, (B, T + 1))]
    else:
        action = rng.uniform(-1, 1, (B, T + 1, 1)).astype(np.float32)
    data.update(reward=rng.normal(size=(B, T + 1)).astype(np.float32), action=action,
                is_first=np.zeros((B, T + 1), bool), is_last=np.zeros((B, T + 1), bool),
                is_terminal=np.zeros((B, T + 1), bool))
    data["is_terminal"][0, 4] = data["is_last"][0, 4] = data["is_first"][0, 5] = True
    data["deter"] = (0.1 * rng.normal(size=(B, deter))).astype(np.float32)
    data["stoch"] = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, (B, stoch // classes))].reshape(B, -1)
    return data


def official_action(action: np.ndarray, case: Case) -> np.ndarray:
    return action.argmax(-1).astype(np.int32) if case.actions else action


def official_batch(data: dict, learner: Learner, case: Case) -> dict[str, np.ndarray]:
    """The same batch as the official replay gives it: context latents as dyn/* entries of every step."""
    classes = learner.cfg["rssm"]["classes"]
    out = {k: v for k, v in data.items() if k not in ("deter", "stoch")}
    out["action"] = official_action(data["action"], case)
    out["dyn/deter"] = np.repeat(data["deter"][:, None], T + 1, 1)
    out["dyn/stoch"] = np.repeat(data["stoch"].reshape(B, 1, -1, classes), T + 1, 1)
    out["consec"] = np.zeros((B, T + 1), np.int32)
    out["stepid"] = np.zeros((B, T + 1, 20), np.uint8)
    return out


def policy_inputs(data: dict, case: Case) -> dict[str, np.ndarray]:
    """One policy step for B environments: the batch's context latent and action, the observations
    of its first trained step; the second environment starts an episode (its latent is reset)."""
    obs = {k: data[k][:, 1] for k in (*case.obs, "reward", "is_last", "is_terminal")}
    obs["is_first"] = np.array([False, True])
    return {**obs, "carry/deter": data["deter"], "carry/stoch": data["stoch"], "carry/action": data["action"][:, 0]}


def official_policy_inputs(inputs: dict, learner: Learner, case: Case) -> dict[str, np.ndarray]:
    classes = learner.cfg["rssm"]["classes"]
    return {**inputs, "carry/stoch": inputs["carry/stoch"].reshape(B, -1, classes),
            "carry/action": official_action(inputs["carry/action"], case)}


def run_official(python: Path, tmp: Path, case: Case, params: dict, data: dict, policy: dict,
                 dtype: str = "float32") -> dict[str, np.ndarray]:
    given = {f"param/{k}": v for k, v in params.items()}
    given.update({f"batch/{k}": v for k, v in data.items()})
    given.update({f"policy/{k}": v for k, v in policy.items()})
    np.savez(tmp / "in.npz", settings=np.array(json.dumps(settings(case, tmp, dtype))), **given)
    done = subprocess.run([str(python), str(SIDE), "train", str(tmp / "in.npz"), str(tmp / "out.npz")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(np.load(tmp / "out.npz"))


def official_shapes(python: Path, tmp: Path, case: Case, dtype: str = "float32") -> dict:
    (tmp / "settings.json").write_text(json.dumps(settings(case, tmp, dtype)))
    done = subprocess.run([str(python), str(SIDE), "shapes", str(tmp / "settings.json"), str(tmp / "shapes.json")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((tmp / "shapes.json").read_text())


def mode_sampling(monkeypatch, learner: Learner) -> None:
    """Test-only, as official_side.py on the official side: latent samples are modes, discrete actions
    the argmax, continuous actions mean + 0.5 x std (at the mean the log-likelihood's gradient for the
    mean is 0, and its rounding, scaled to a full step by the RMS normaliser, would steer the actor)."""
    def latent_mode(self, key, stats):
        probs = jnp.exp(stats)
        onehot = jax.nn.one_hot(jnp.argmax(stats, -1), stats.shape[-1], dtype=jnp.float32)
        sample = onehot + probs - jax.lax.stop_gradient(probs)
        return sample.reshape(*sample.shape[:-2], self.flat_dim)
    monkeypatch.setattr(CategoricalLatent, "sample", latent_mode)
    def fixed_draw(self, key, out):
        mean, std = dists.bounded_normal(out, self.minstd, self.maxstd)
        return mean + POLICY_NOISE * std
    discrete = isinstance(learner.policy, heads.DiscretePolicy)
    monkeypatch.setattr(type(learner.policy), "sample", (lambda self, key, out: self.mode(out)) if discrete else fixed_draw)


def our_policy_step(learner: Learner, params: dict, inputs: dict) -> dict:
    """Our policy step (`Learner._policy_step`, unjitted) on `policy_inputs`, with the distribution the
    action is drawn from: the policy head's output as `sample` receives it."""
    seen = {}
    draw = type(learner.policy).sample  # the fixed draw of `mode_sampling`
    def recording(self, key, out):
        seen["out"] = out
        return draw(self, key, out)
    carry = {"deter": inputs["carry/deter"], "stoch": inputs["carry/stoch"], "prevact": inputs["carry/action"]}
    obs = {k: jnp.asarray(v) for k, v in inputs.items() if not k.startswith("carry/")}
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(type(learner.policy), "sample", recording)
        new, action = learner._policy_step(params, jax.tree.map(jnp.asarray, carry), obs, jax.random.PRNGKey(0), False)
    if isinstance(learner.policy, heads.DiscretePolicy):
        dist = {"logp": dists.unimix_logits(seen["out"], learner.policy.unimix)}
    else:
        dist = dict(zip(("mean", "stddev"), dists.bounded_normal(seen["out"], learner.policy.minstd,
                                                                 learner.policy.maxstd)))
    return {**dist, "action": action, "deter": new["deter"], "stoch": new["stoch"]}


def our_side(learner: Learner, state: dict, data: dict, inputs: dict) -> dict:
    """What our learner computes on the batch: the same quantities official_side.py captures. The
    intermediate ones are computed as `Learner._loss` does, on the parameters cast to the compute dtype."""
    params, key = state["params"], jax.random.PRNGKey(0)
    policy = our_policy_step(learner, params, inputs)
    jdata = jax.tree.map(jnp.asarray, data)
    obs = {k: jdata[k][:, 1:] for k in learner.spec}
    p, slow = nets.cast_params(params, learner.dtype), nets.cast_params(state["slow_val"], learner.dtype)
    tokens = codecs.encode(p["enc"], obs, learner.spec, learner.dtype)
    carry = {"deter": jdata["deter"], "stoch": jdata["stoch"]}
    _, states, post = learner.rssm.observe(p["dyn"], carry, tokens, jdata["action"][:, :-1],
                                           jdata["is_first"][:, 1:], key)
    prior = learner.rssm.prior(p["dyn"], states["deter"])
    img_states, img_act, img_feat = learner.rollout(p, states, key)
    imagined = {**img_states, "act": img_act, "rew": learner.scalar.mean(heads.head(p["rew"], img_feat)),
                "con": learner._continue(p, img_feat)}
    _, retnorm, ret, _, _ = learner._imagine(p, slow, state["retnorm"], states, key)
    grad_fn = jax.value_and_grad(learner._loss, has_aux=True)
    (total, (metrics, _, _)), grads = grad_fn(params, state["slow_val"], state["retnorm"], jdata, key)
    after = {0: jax.tree.map(jnp.copy, state)}
    for step in range(1, STEPS + 1):  # the same batch every step, as on the official side
        after[step], _, _ = learner.train_step(jax.tree.map(jnp.copy, after[step - 1]), jdata, key)
    after = {1: after[1], STEPS: after[STEPS]}
    return dict(tokens=tokens, deter=states["deter"], post=post, prior=prior, ret=ret, retnorm=retnorm,
                total=total, metrics=metrics, grads=grads, after=after, policy=policy, imagined=imagined)


def informative(state: dict) -> dict:
    """The initial state with the zero-initialised twohot output layers (reward, value, slow value) set
    to small random weights and a bias peaked at the centre bin, the same on both sides.

    At zero init every prediction is the mean of the bins under uniform probabilities, which both codes
    mean to be exactly 0 (a symmetric sum over bins up to +-4.85e8); the official jitted sum is not
    (-0.1645 on CPU: a fused multiply-add rounds one product of each mirrored pair and not the other,
    test_twohot_rounding.py), so at init the comparison would measure that rounding. Peaked
    logits keep the far bins' probabilities below float32 resolution and every loss term informative.
    """
    rng = np.random.default_rng(1)
    peak = -0.3 * np.abs(np.arange(255) - 127).astype(np.float32)
    def head(p):
        out = {"w": (0.01 * rng.normal(size=p["out"]["w"].shape)).astype(np.float32), "b": peak}
        return {**p, "out": jax.tree.map(jnp.asarray, out)}
    params = {**state["params"], "rew": head(state["params"]["rew"]), "val": head(state["params"]["val"])}
    return {**state, "params": params, "slow_val": head(state["slow_val"])}


@pytest.fixture(scope="module", params=list(CASES))
def compared(request, official_python, tmp_path_factory):
    case = CASES[request.param]
    tmp = tmp_path_factory.mktemp(f"official_{request.param}")
    learner = our_learner(case)
    state = informative(learner.init(jax.random.PRNGKey(0)))
    official = mapping.to_official(state["params"], state["slow_val"], official_shapes(official_python, tmp, case))
    data = batch(learner, case)
    inputs = policy_inputs(data, case)
    outputs = run_official(official_python, tmp, case, official, official_batch(data, learner, case),
                           official_policy_inputs(inputs, learner, case))
    with pytest.MonkeyPatch.context() as monkeypatch:
        mode_sampling(monkeypatch, learner)
        ours = our_side(learner, state, data, inputs)
    return learner, state, ours, outputs, case, official


def test_mapping_covers_both_sides_exactly(compared):
    """The mapping round-trips, and a parameter of either side without a counterpart is an error."""
    _, state, _, _, _, mapped = compared
    params, slow = mapping.to_ours(mapped, state["params"], state["slow_val"])
    for a, b in zip(jax.tree.leaves((params, slow)), jax.tree.leaves((state["params"], state["slow_val"]))):
        np.testing.assert_array_equal(a, b)
    shapes = {k: v.shape for k, v in mapped.items()}
    with pytest.raises(mapping.MappingError, match="without a counterpart"):
        mapping.to_ours({**mapped, "dec/extra/kernel": np.zeros((1, 1))}, state["params"], state["slow_val"])
    with pytest.raises(mapping.MappingError, match="no official counterpart"):
        mapping.to_official({**state["params"], "extra": {"w": jnp.zeros((1, 1))}}, state["slow_val"], shapes)
    with pytest.raises(mapping.MappingError, match="unmapped"):
        mapping.to_official(state["params"], state["slow_val"], {**shapes, "dec/extra/kernel": (1, 1)})
    name = next(k for k in shapes if k.startswith(("enc/cnn", "enc/mlp")))
    with pytest.raises(mapping.MappingError, match="lacks"):
        mapping.to_official(state["params"], state["slow_val"], {k: v for k, v in shapes.items() if k != name})


def test_encoder_outputs(compared):
    _, _, ours, official, _, _ = compared
    close(ours["tokens"], official["tokens"], "encoder tokens")


def test_posterior_and_prior_along_the_sequence(compared):
    _, _, ours, official, _, _ = compared
    close(ours["deter"], official["deter"], "deter")
    unimix = lambda logit: dists.unimix_logits(jnp.asarray(logit), 0.01)  # noqa: E731  ours keep log-probs
    close(ours["post"], unimix(official["post_logit"]), "posterior log-probabilities")
    close(ours["prior"], unimix(official["prior_logit"]), "prior log-probabilities")


@pytest.mark.parametrize("term", ["rec", "rew", "con", "dyn", "rep", "policy", "value", "repval"])
def test_loss_terms(compared, term):
    """`rec`: the decoder's loss of every observation key (ours `loss/rec_<key>`, official `loss/<key>`).
    A loss is the mean of the official per-step losses (B, T, or B*T for the imagination's); the absolute
    bound is a fraction of their largest, as a mean of terms of either sign may cancel to near zero (the
    size-12m policy loss: -4.7e-6, a mean of terms up to 1.5e-3)."""
    _, _, ours, official, case, _ = compared
    tolerance = LOOSE if term == "policy" else (RTOL, 1e-6)
    names = {f"rec_{k}": k for k in case.obs} if term == "rec" else {term: term}
    for our_name, official_name in names.items():
        steps = official[f"loss/{official_name}"]
        close(ours["metrics"][f"loss/{our_name}"], steps.mean(), our_name, tolerance, scale=np.abs(steps).max())


def test_total_loss(compared):
    _, _, ours, official, _, _ = compared
    close(ours["total"], official["loss_total"], "total loss")


def test_imagined_trajectory(compared):
    """The states, actions, rewards and continue probabilities along the imagination horizon, from every
    posterior state. The official imagine returns the H states after the start (ours: H + 1, start
    first) and its stoch as (S, C) one-hots; its discrete actions are indices. Rewards are twohot means
    (`LOOSE`, see the module docstring)."""
    _, _, ours, official, case, _ = compared
    imagined = ours["imagined"]
    close(imagined["deter"][:, 1:], official["imag/deter"], "imagined deter")
    close(imagined["stoch"][:, 1:], official["imag/stoch"].reshape(*official["imag/stoch"].shape[:2], -1),
          "imagined stoch")
    action = official["imag/act"]
    if case.actions:
        action = np.eye(case.actions, dtype=np.float32)[action]
    close(imagined["act"], action, "imagined actions")
    close(imagined["rew"], official["imag/rew"], "imagined rewards", LOOSE)
    close(imagined["con"], official["imag/con"], "imagined continue probabilities")


def test_policy_step_action_distribution(compared):
    """One policy step for a batch of observations (one environment continuing from a replayed latent,
    one starting an episode): the distribution (log-probabilities, or mean and std), the action drawn
    (the fixed draw) and the new latent."""
    _, _, ours, official, case, _ = compared
    policy = ours["policy"]
    for name in ("logp",) if case.actions else ("mean", "stddev"):
        close(policy[name], official[f"policy/{name}"], f"policy {name}")
    action = official["policy/action"]
    close(policy["action"], np.eye(case.actions, dtype=np.float32)[action] if case.actions else action,
          "policy action")
    close(policy["deter"], official["policy/deter"], "policy deter")
    close(policy["stoch"], official["policy/stoch"].reshape(B, -1), "policy stoch")


def test_lambda_returns_of_the_imagined_trajectories(compared):
    _, _, ours, official, _, _ = compared
    close(ours["ret"], official["imag/ret"], "lambda-returns", LOOSE)


def test_return_normaliser_state_after_the_step(compared):
    """The normaliser's EMAs are percentiles of the lambda-returns, so they carry the returns' twohot
    rounding and are compared at the returns' bound (`LOOSE`): with the official initialiser the vector
    configuration's 5th percentile is a return of -2.6e-4, where that rounding is 4.5e-5 relative."""
    _, _, ours, official, _, _ = compared
    close(ours["retnorm"]["lo"], official["after1/retnorm/lo/value"], "5th percentile EMA", LOOSE)
    close(ours["retnorm"]["hi"], official["after1/retnorm/hi/value"], "95th percentile EMA", LOOSE)


def test_gradient_of_every_parameter(compared):
    _, state, ours, official, _, _ = compared
    grads = {k.removeprefix("grad/"): v for k, v in official.items() if k.startswith("grad/")}
    grads.update({k.replace("val/", "slowval/", 1): np.zeros_like(v) for k, v in grads.items() if k.startswith("val/")})
    theirs, _ = mapping.to_ours(grads, state["params"], state["slow_val"])
    for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(ours["grads"])[0], jax.tree.leaves(theirs)):
        close(a, b, f"gradient {jax.tree_util.keystr(path)}", LOOSE)


UPDATES = (1e-3, 1e-5)
# A gradient element is rounding-dominated when the gradients' own bound (LOOSE: 1e-5 of the tensor's
# largest, absolute) is more than the update's relative bound (1e-3) of it: below 1e-2 of the largest.
NEAR_ZERO_GRAD = LOOSE[1] / UPDATES[0]


@pytest.mark.parametrize("step", [1, STEPS])
def test_parameters_and_slow_critic_after_warmup_steps(compared, step):
    """Step 1 moves only the slow critic (the warm-up's learning rate is 0 at the first update); by
    step 10 every parameter has moved through AGC, the RMS scaling and momentum.

    Compared: the change from the initial parameters, at `UPDATES` (relative 1e-3; absolute: 1e-5 of the
    tensor's largest change, or two ulps of its largest parameter per step, as each step's update and
    slow-critic EMA round; plus what an element's gradient error carries, below). The RMS scaling
    divides each gradient element by its own running RMS, so an element's update carries the relative
    rounding error of its gradient: the gradients agree within 1e-5 of the tensor's largest (`LOOSE`,
    twohot rounding), which is more than 1e-3 of an element a hundred times smaller than the largest
    (`NEAR_ZERO_GRAD`). Such an element is dominated by rounding and, normalised to a full-size step, may
    go its own way over ten steps (measured in the vector configurations: none at size 1m; at 12m one or
    two elements of the first layers of the heads and of the RSSM's hidden layer, each of more than 655,360);
    such elements may differ, at most 0.1% of a tensor. Elements with larger gradients agree at 1e-3 (worst measured:
    2.5e-4, one gate bias of 1536), plus what their gradient's error carries through steps whose signs
    alternate and cancel in the net change: LOOSE[1] x (largest gradient / own gradient) x the tensor's
    largest change (the size-12m actor's last hidden bias, entry 219, first gradient 0.029 of the largest:
    it moved 1.2736e-8 vs 1.2692e-8, 190 times less than the tensor's largest change, 2.4e-6)."""
    _, state, ours, official, _, _ = compared
    after = {k.removeprefix(f"after{step}/"): v for k, v in official.items() if k.startswith(f"after{step}/")}
    params, slow = mapping.to_ours(after, state["params"], state["slow_val"])
    mine = ours["after"][step]
    zero_grads = jax.tree.map(jnp.zeros_like, state["slow_val"])
    for name, a_tree, b_tree, start, grads in (
            ("params", mine["params"], params, state["params"], ours["grads"]),
            ("slow", mine["slow_val"], slow, state["slow_val"], zero_grads)):
        leaves = zip(jax.tree_util.tree_flatten_with_path(a_tree)[0], jax.tree.leaves(b_tree),
                     jax.tree.leaves(start), jax.tree.leaves(grads))
        for (path, a), b, s, g in leaves:
            moved_ours, moved_official = np.asarray(a) - np.asarray(s), np.asarray(b) - np.asarray(s)
            largest = np.abs(moved_official).max()
            # A float32 parameter moves in steps of its ulp (1.2e-7 relative): two per step are rounding.
            atol = max(UPDATES[1] * largest, 2.4e-7 * step * np.abs(np.asarray(s)).max())
            g = np.abs(np.asarray(g))
            rounding = g < NEAR_ZERO_GRAD * g.max() if g.max() > 0 else np.ones(g.shape, bool)
            # each step of an element carries its gradient's error, LOOSE[1] of the largest gradient, relative
            # to its own gradient; steps of alternating sign add that up while the move itself cancels
            carried = LOOSE[1] * g.max() / np.maximum(g, NEAR_ZERO_GRAD * g.max()) * largest if g.max() > 0 else 0.0
            apart = np.abs(moved_ours - moved_official) > atol + carried + UPDATES[0] * np.abs(moved_official)
            where = f"{name} {jax.tree_util.keystr(path)} by step {step}"
            wrong = np.argwhere(apart & ~rounding)[:5]
            assert not wrong.size, f"{where}: " + "; ".join(
                f"{tuple(i)} moved {moved_ours[tuple(i)]:.5g} vs {moved_official[tuple(i)]:.5g}, first gradient "
                f"{g[tuple(i)] / g.max():.2g} of the largest" for i in wrong)
            assert apart.mean() <= 0.001, f"{where}: {apart.sum()} of {apart.size} elements differ"
    if step == STEPS:
        moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(mine["params"]),
                                                           jax.tree.leaves(state["params"]))]
        assert all(moved), "every parameter moves by the tenth step"


def official_init(python: Path, tmp: Path, case: Case, seed: int) -> dict[str, np.ndarray]:
    (tmp / "settings.json").write_text(json.dumps({**settings(case, tmp), "seed": seed}))
    done = subprocess.run([str(python), str(SIDE), "init", str(tmp / "settings.json"), str(tmp / "init.npz")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(np.load(tmp / "init.npz"))


def kurtosis(x: np.ndarray) -> float:
    z = (x - x.mean()) / x.std()
    return float((z ** 4).mean())


@pytest.mark.parametrize("name", list(CASES))
def test_initial_parameters_follow_the_same_distributions(name, official_python, tmp_path):
    """The tests above start both sides from the same weights; learning also starts from each side's own
    initialiser. Per parameter (the official one mapped onto ours, each side from its own seed): zero
    and constant tensors are equal; random ones have the same mean and standard deviation (within six
    standard errors: sqrt(1/n) and sqrt(1/(2n)) relative) and, with 10,000 elements or more, the same shape
    of distribution (kurtosis within 0.25: normal 3, truncated normal about 2.6-2.8, uniform 1.8)."""
    case = CASES[name]
    learner = our_learner(case)
    state = learner.init(jax.random.PRNGKey(0))
    official = official_init(official_python, tmp_path, case, seed=1)
    params, slow = mapping.to_ours(official, state["params"], state["slow_val"])
    ours_leaves = jax.tree_util.tree_flatten_with_path((state["params"], state["slow_val"]))[0]
    for (path, a), b in zip(ours_leaves, jax.tree.leaves((params, slow))):
        a, b, where = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel(), jax.tree_util.keystr(path)
        if np.ptp(b) == 0:
            np.testing.assert_array_equal(a, b, err_msg=f"{where}: constant {b[0]} on the official side")
            continue
        n = a.size
        assert abs(a.std() / b.std() - 1) <= 6 * np.sqrt(1 / (2 * n)), f"{where}: std {a.std():.4g} vs {b.std():.4g}"
        assert abs(a.mean() - b.mean()) <= 6 * b.std() * np.sqrt(2 / n), f"{where}: mean {a.mean():.3g} vs {b.mean():.3g}"
        if n >= 10_000:
            assert abs(kurtosis(a) - kurtosis(b)) <= 0.25, f"{where}: kurtosis {kurtosis(a):.2f} vs {kurtosis(b):.2f}"
