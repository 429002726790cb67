"""The learner's switches: dynamics backprop where each preset says so, no actor gradient into the world
model, each loss term on its own module, the slow critic schedule. (V3's loss and gradient, REINFORCE
for both action kinds, are pinned by tests/dreamer/test_v3_reference.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.dreamer.adam import group_of
from agents.dreamer.learner import Learner
from preset_helpers import CONTINUOUS, DISCRETE, OBS_SPACE, batch, tiny

# Which action kinds each preset trains by dynamics backprop (danijar/dreamerv3 @ 8fa35f8, danijar/dreamerv2 @
# 07d906e, danijar/dreamer @ 56d4d44).
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
    learner = Learner(cfg, OBS_SPACE, DISCRETE if kind == "discrete" else CONTINUOUS)
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
    learner = Learner(cfg, OBS_SPACE, DISCRETE if kind == "discrete" else CONTINUOUS)
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
    learner = Learner(cfg, OBS_SPACE, DISCRETE)
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
