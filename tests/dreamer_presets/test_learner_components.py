"""The component learner: dynamics backprop where each preset says so, no actor gradient into the world
model, the slow critic schedule, and equality with V3's own learner under V3 settings."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

from agents.dreamer import config as dreamer_config
from agents.dreamer.adam import group_of
from agents.dreamer.component_learner import V3_SWITCHES, ComponentLearner
from agents.dreamer.learner import Learner
from preset_helpers import CONTINUOUS, DISCRETE, OBS_SPACE, batch, tiny
from harness.plan import CONFIG_DIR

# Which action kinds each preset trains by dynamics backprop (spec §1.9, §3, §4).
BACKPROP = {
    "dreamerv1": {"discrete": True, "continuous": True},
    "dreamerv2": {"discrete": False, "continuous": True},
    "dreamerv3_2023": {"discrete": False, "continuous": True},
}


def l1(tree) -> float:
    return float(sum(jnp.abs(x).sum() for x in jax.tree.leaves(tree)))


def trained_heads(params):
    """The reward and value output layers start at zero, which leaves nothing to backpropagate or
    regress at init; give them random weights as training would."""
    for name, key in (("rew", 3), ("val", 4)):
        out = params[name]["out"]["w"]
        params[name]["out"]["w"] = 0.1 * jax.random.normal(jax.random.PRNGKey(key), out.shape)
    return params


def term_grads(learner, state, data, names):
    """Gradients of loss terms (their batch means) w.r.t. every parameter group, in one compiled pass."""
    def terms(p):
        _, (metrics, _, _) = learner._loss(p, state["slow_val"], state["retnorm"], data, jax.random.PRNGKey(2))
        return jnp.stack([metrics[f"loss/{name}"] for name in names])
    jacobian = jax.jit(jax.jacrev(terms))(state["params"])
    return [jax.tree.map(lambda g: g[i], jacobian) for i in range(len(names))]


@pytest.mark.parametrize("preset", sorted(BACKPROP))
@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_dynamics_backprop_reaches_the_actor_only_where_the_preset_says_so(preset, kind):
    cfg = tiny(preset)
    learner = ComponentLearner(cfg, OBS_SPACE, DISCRETE if kind == "discrete" else CONTINUOUS)
    assert learner.backprop == BACKPROP[preset][kind]
    params = trained_heads(learner.init(jax.random.PRNGKey(0))["params"])
    states = {"deter": jnp.full((2, 3, cfg["rssm"]["deter"]), 0.1),
              "stoch": jnp.full((2, 3, learner.rssm.latent.flat_dim), 0.1)}
    # Imagined features depend differentiably on the actor exactly under dynamics backprop ...
    grads = jax.grad(lambda p: learner.rollout(p, states, jax.random.PRNGKey(1))[2].sum())(params)
    assert (l1(grads["pol"]) > 0) == BACKPROP[preset][kind]
    # ... and never on the world model or the critic: the rollout uses stop-gradient parameters.
    assert all(l1(grads[name]) == 0 for name in grads if name != "pol")


@pytest.mark.parametrize("preset, kind", [("dreamerv1", "discrete"), ("dreamerv2", "continuous"),
                                          ("dreamerv2", "discrete")])
def test_each_loss_term_moves_only_its_module(preset, kind):
    """Policy -> actor, value -> critic, reward -> world model (encoder, RSSM, reward head)."""
    cfg = tiny(preset)
    learner = ComponentLearner(cfg, OBS_SPACE, DISCRETE if kind == "discrete" else CONTINUOUS)
    state = learner.init(jax.random.PRNGKey(0))
    state["params"] = trained_heads(state["params"])
    data = batch(learner, cfg)
    expected = {"policy": {"pol"}, "value": {"val"}, "rew": {"enc", "dyn", "rew"}}
    for name, grads in zip(expected, term_grads(learner, state, data, list(expected))):
        moved = expected[name]
        assert {n for n in grads if l1(grads[n]) > 0} == moved, name
    assert {group_of(n) for n in ("enc", "dyn", "dec", "rew", "con")} == {"model"}


def test_slow_critic_is_copied_every_slow_every_updates():
    cfg = tiny("dreamerv2", slow_every=2)
    learner = ComponentLearner(cfg, OBS_SPACE, DISCRETE)
    state = learner.init(jax.random.PRNGKey(0))
    data = jax.device_put(batch(learner, cfg))
    same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))  # noqa: E731
    history = []
    for i in range(3):
        state, _, _ = learner.train_step(state, data, jax.random.PRNGKey(i))
        history.append((jax.tree.map(np.asarray, state["slow_val"]), jax.tree.map(np.asarray, state["params"]["val"])))
    assert same(*history[0])                      # update 0: copied
    assert same(history[1][0], history[0][0])     # update 1: kept
    assert not same(*history[1])
    assert same(*history[2])                      # update 2: copied again
    assert int(state["updates"]) == 3


@pytest.mark.parametrize("act_space", [DISCRETE, CONTINUOUS], ids=["discrete", "continuous"])
def test_v3_settings_reproduce_the_v3_learner_exactly(act_space):
    """With V3's choices for every switch, the component learner's loss and gradient are V3's."""
    cfg = yaml.safe_load((CONFIG_DIR / "agent" / "dreamerv3.yaml").read_text())
    cfg.update(size="1m", compute_dtype="float32", imag_horizon=4, units=16, depth=4)
    cfg["rssm"].update(deter=32, hidden=16)
    cfg = dreamer_config.resolve(cfg)
    components = {**copy.deepcopy(cfg), **V3_SWITCHES, "learner": "components"}
    components["policy"] = {**cfg["policy"], **V3_SWITCHES["policy"]}
    v3, ours = Learner(cfg, OBS_SPACE, act_space), ComponentLearner(components, OBS_SPACE, act_space)
    key = jax.random.PRNGKey(0)
    s3, so = v3.init(key), ours.init(key)
    data = batch(v3, cfg)
    data["is_terminal"][0, 3] = data["is_last"][0, 3] = data["is_first"][0, 4] = True

    def loss(learner, s):
        fn = jax.jit(jax.value_and_grad(lambda p: learner._loss(p, s["slow_val"], s["retnorm"], data, key)[0]))
        return fn(s["params"])

    (l3, g3), (lo, go) = loss(v3, s3), loss(ours, so)
    assert float(lo) == pytest.approx(float(l3), rel=1e-6)
    for a, b in zip(jax.tree.leaves(g3), jax.tree.leaves(go)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
