"""Selectable layers: dense norm/activation, image codecs, learned initial state, output init, and the
layer kinds each preset's config builds (danijar/dreamerv3 @ e3f0224, danijar/dreamerv3 @ 8fa35f8,
danijar/dreamerv2 @ 07d906e, danijar/dreamer @ 56d4d44)."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.dreamer import codecs, nets
from agents.dreamer import config as dreamer_config
from agents.dreamer.learner import Learner
from agents.dreamer.rssm import RSSM, RSSMConfig
from preset_helpers import OBS_SPACE, preset_config, tiny

IMAGE = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)})
SPEC = codecs.obs_spec(IMAGE)
ELU = nets.Layer("elu", "none", 1e-3)


@pytest.mark.parametrize("image, features", [("v3", 4 * 4 * 4 * 4), ("strided", 2 * 2 * 8 * 4),
                                             ("strided_same", 4 * 4 * 8 * 4)])
def test_image_codecs_map_64x64_images_to_tokens_and_back(image, features):
    cfg = codecs.CodecConfig(depth=4, units=8, image=image, dense=ELU, conv=ELU)
    key = jax.random.PRNGKey(0)
    enc = jax.eval_shape(lambda k: codecs.encoder_init(k, SPEC, cfg), key)  # shapes only: no compute
    dec = jax.eval_shape(lambda k: codecs.decoder_init(k, SPEC, 8, 5, cfg), key)
    obs = {"image": jax.ShapeDtypeStruct((2, 3, 64, 64, 3), jnp.uint8)}
    deter, stoch = jax.ShapeDtypeStruct((2, 3, 8), jnp.float32), jax.ShapeDtypeStruct((2, 3, 5), jnp.float32)
    assert codecs.encoder_out_dim(SPEC, cfg) == features
    assert jax.eval_shape(lambda p, o: codecs.encode(p, o, SPEC, jnp.float32), enc, obs).shape == (2, 3, features)
    image = jax.eval_shape(lambda p, d, s: codecs.decode_image(p, d, s, SPEC), dec, deter, stoch)
    assert image.shape == (2, 3, 64, 64, 3)  # exact: nothing cropped or padded
    loss = jax.eval_shape(lambda p, d, s, o: codecs.decode_losses(p, d, s, o, SPEC), dec, deter, stoch, obs)
    assert loss["image"].shape == (2, 3)


def test_strided_decoder_is_v1s_transposed_convs_and_a_unit_normal_likelihood():
    # Stride-2 'VALID' transposed conv: every input pixel adds the (flipped) kernel at twice its position.
    rng = np.random.default_rng(0)
    p = {"w": jnp.asarray(rng.normal(size=(5, 5, 2, 3)), jnp.float32), "b": jnp.zeros(3)}
    x = rng.normal(size=(1, 3, 3, 2)).astype(np.float32)
    expected = np.zeros((1, 2 * 3 + 3, 2 * 3 + 3, 3), np.float32)
    for i, j in np.ndindex(3, 3):
        expected[0, 2 * i:2 * i + 5, 2 * j:2 * j + 5] += np.einsum("c,abco->abo", x[0, i, j], p["w"][::-1, ::-1])
    np.testing.assert_allclose(nets.conv_transpose(p, jnp.asarray(x), "VALID"), expected, rtol=1e-5, atol=1e-5)
    # 1 -> 5 -> 13 -> 30 -> 64 with kernels 5, 5, 6, 6; loss = 0.5 * squared error to x/255 summed.
    cfg = codecs.CodecConfig(depth=2, units=8, image="strided", dense=ELU, conv=ELU)
    dec = codecs.decoder_init(jax.random.PRNGKey(1), SPEC, 6, 5, cfg)
    assert [c["w"].shape[0] for c in dec["image"]["convs"]] == [5, 5, 6, 6]
    deter, stoch = jnp.ones((1, 6)), jnp.ones((1, 5))
    obs = {"image": jnp.full((1, 64, 64, 3), 51, jnp.uint8)}
    pred, losses = jax.jit(lambda p: (codecs.decode_image(p, deter, stoch, SPEC),
                                      codecs.decode_losses(p, deter, stoch, obs, SPEC)))(dec)
    loss = losses["image"]
    np.testing.assert_allclose(loss, 0.5 * np.square(pred - 0.2).sum((-3, -2, -1)), rtol=1e-5)


def test_strided_layout_needs_64x64_images():
    spec = codecs.obs_spec(gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)}))
    with pytest.raises(ValueError, match="'strided' .* 64x64 images only, got 96x96"):
        codecs.encoder_out_dim(spec, codecs.CodecConfig(depth=4, units=8, image="strided"))


def test_elu_mlp_without_norm_is_dense_then_elu():
    p = nets.mlp_init(jax.random.PRNGKey(0), 3, 4, 2, ELU)
    assert all(set(layer["norm"]) == {"layer"} for layer in p)  # no norm parameters
    x = np.array([[0.5, -2.0, 1.0]], np.float32)
    elu = lambda z: np.where(z > 0, z, np.exp(z) - 1)  # noqa: E731
    h = elu(x @ np.asarray(p[0]["lin"]["w"]) + np.asarray(p[0]["lin"]["b"]))
    expected = elu(h @ np.asarray(p[1]["lin"]["w"]) + np.asarray(p[1]["lin"]["b"]))
    np.testing.assert_allclose(nets.mlp(p, jnp.asarray(x)), expected, rtol=1e-5)


@pytest.mark.parametrize("eps", [1e-3, 0.5])
def test_layer_norm_uses_its_eps(eps):
    p = nets.dense_init(jax.random.PRNGKey(0), 3, 4, nets.Layer("relu", "layer", eps))
    p["norm"]["scale"], p["norm"]["offset"] = jnp.array([1.0, 2.0, 0.5, 1.0]), jnp.array([0.0, 0.1, 0.0, -0.2])
    x = jnp.array([[0.3, -1.0, 0.7]])
    y = np.asarray(nets.linear(p["lin"], x))
    normed = (y - y.mean()) / np.sqrt(y.var() + eps) * np.asarray(p["norm"]["scale"]) + np.asarray(p["norm"]["offset"])
    np.testing.assert_allclose(nets.dense(p, x), np.maximum(normed, 0.0), rtol=1e-5)


def test_learned_initial_state_starts_sequences_and_is_trained():
    cfg = RSSMConfig(deter=6, hidden=5, classes=4, stoch=3, core="gru", blocks=1, initial="learned")
    model = RSSM(cfg, token_dim=4, act_dim=2, layer=nets.Layer("silu", "layer", 1e-3))
    p = model.init(jax.random.PRNGKey(0))
    assert p["initial"].shape == (6,) and not p["initial"].any()  # tanh(0) = 0 at the start
    p["initial"] = jnp.linspace(-1.0, 1.0, 6)
    tokens, actions = jnp.ones((2, 3, 4)), jnp.ones((2, 3, 2))
    noise = {"deter": jnp.full((2, 6), 3.0), "stoch": jnp.full((2, 12), 0.5)}
    first = jnp.array([[True, False, False], [False, False, False]])
    key = jax.random.PRNGKey(1)

    def total(p, first):  # one compilation gives the states and the gradient
        states = model.observe(p, noise, tokens, actions, first, key)[1]
        return states["deter"].sum(), states

    grad = jax.jit(jax.grad(total, has_aux=True))
    (reset_grad, states), (kept_grad, _) = grad(p, first), grad(p, jnp.zeros_like(first))
    start = model.learned_initial(p)
    np.testing.assert_allclose(start["deter"][0], np.tanh(np.linspace(-1.0, 1.0, 6)), rtol=1e-6)
    assert start["stoch"].sum() == 3.0  # one-hot mode of each of the 3 latents
    expected = model.step(p, start, jnp.zeros((1, 2)))  # after a reset the previous action is zero
    np.testing.assert_allclose(states["deter"][0, 0], expected[0], rtol=1e-5)
    assert not np.allclose(states["deter"][1, 0], expected[0])  # no reset: the carried state is used

    assert np.abs(reset_grad["initial"]).sum() > 0 and not kept_grad["initial"].any()


def test_output_layer_init_scales():
    def outputs(agent, **overrides):
        learner = Learner(tiny(agent, **overrides), OBS_SPACE, gym.spaces.Discrete(3))
        params = learner.init(jax.random.PRNGKey(0))["params"]
        return {k: float(jnp.abs(params[k]["out"]["w"]).max()) for k in ("rew", "con", "pol", "val")}

    v2, v3_2023 = outputs("dreamerv2"), outputs("dreamerv3_2023")
    assert all(v > 0.1 for v in v2.values())  # V1/V2: no zero-init
    assert v3_2023["rew"] == v3_2023["val"] == 0.0 and v3_2023["pol"] > 0.1 and v3_2023["con"] > 0.1
    zeroed = outputs("dreamerv2", **{"heads.outscale.reward": 0.0, "heads.outscale.policy": 0.01})
    assert zeroed["rew"] == 0.0 and zeroed["pol"] == pytest.approx(0.01 * v2["pol"])


def _shapes(agent, suite, space=IMAGE, act=gym.spaces.Discrete(3)):
    """Parameter shapes of a preset at its paper size, without computing them."""
    cfg = dreamer_config.resolve(preset_config(agent, suite, compute_dtype="float32"))
    learner = Learner(cfg, space, act)
    return jax.eval_shape(learner.init, jax.random.PRNGKey(0))["params"], learner


def _kinds(params) -> set:
    """The Layers (static nodes in the parameters) of every dense layer and conv in `params`."""
    is_layer = lambda x: isinstance(x, nets.Layer)  # noqa: E731
    return {x for x in jax.tree.leaves(params, is_leaf=is_layer) if is_layer(x)}


def test_dreamerv1_networks_have_v1s_layers():
    p, learner = _shapes("dreamerv1", "dmc_vision", act=gym.spaces.Box(-1, 1, (2,), np.float32))
    assert [c["conv"]["w"].shape for c in p["enc"]["convs"]] == [
        (4, 4, 3, 32), (4, 4, 32, 64), (4, 4, 64, 128), (4, 4, 128, 256)]
    assert learner.rssm.token_dim == 1024
    assert p["dec"]["image"]["in"]["w"].shape == (230, 1024)  # Dense(1024) from deter 200 + stoch 30
    assert [c["w"].shape for c in p["dec"]["image"]["convs"]] == [
        (5, 5, 1024, 128), (5, 5, 128, 64), (6, 6, 64, 32), (6, 6, 32, 3)]
    assert [len(p[k]["mlp"]) for k in ("rew", "val", "pol")] == [2, 3, 4]
    assert {layer["lin"]["w"].shape[1] for k in ("rew", "val", "pol") for layer in p[k]["mlp"]} == {400}
    assert _kinds({k: p[k] for k in ("rew", "val", "pol", "dyn")}) == {nets.Layer("elu", "none", 1e-3)}
    assert _kinds(p["enc"]) == _kinds(p["dec"]) == {nets.Layer("relu", "none", 1e-3)}
    assert "initial" not in p["dyn"] and p["dyn"]["core"]["in"]["lin"]["w"].shape == (32, 200)


def test_dreamerv2_networks_have_v2s_layers_and_layernorm_on_crafter():
    p, _ = _shapes("dreamerv2", "atari57")
    assert [c["conv"]["w"].shape[-1] for c in p["enc"]["convs"]] == [48, 96, 192, 384]
    assert [len(p[k]["mlp"]) for k in ("rew", "con", "val", "pol")] == [4, 4, 4, 4]
    assert _kinds(p) == {nets.Layer("elu", "none", 1e-3)}
    crafter, _ = _shapes("dreamerv2", "crafter")
    assert _kinds(crafter) == {nets.Layer("elu", "layer", 1e-3)}
    assert crafter["rew"]["mlp"][0]["norm"]["offset"].shape == (400,)
    vector = gym.spaces.Dict({"state": gym.spaces.Box(-1, 1, (5,), np.float32)})
    proprio, _ = _shapes("dreamerv2", "dmc_proprio", vector, gym.spaces.Box(-1, 1, (1,), np.float32))
    assert [layer["lin"]["w"].shape for layer in proprio["enc"]["mlp"]] == [(5, 400)] + [(400, 400)] * 3


def test_dreamerv3_2023_networks_have_its_layers():
    p, learner = _shapes("dreamerv3_2023", "crafter")
    assert [c["conv"]["w"].shape for c in p["enc"]["convs"]] == [
        (4, 4, 3, 96), (4, 4, 96, 192), (4, 4, 192, 384), (4, 4, 384, 768)]
    assert learner.rssm.token_dim == 4 * 4 * 768
    assert p["dec"]["image"]["in"]["w"].shape == (4096 + 1024, 4 * 4 * 768)
    assert [c["w"].shape[-1] for c in p["dec"]["image"]["convs"]] == [384, 192, 96, 3]
    assert _kinds(p) == {nets.Layer("silu", "layer", 1e-3)}
    assert [len(p[k]["mlp"]) for k in ("rew", "con", "val", "pol")] == [5, 5, 5, 5]
    assert p["dyn"]["initial"].shape == (4096,)
    vector = gym.spaces.Dict({"state": gym.spaces.Box(-1, 1, (5,), np.float32)})
    small, _ = _shapes("dreamerv3_2023", "dmc_proprio", vector, gym.spaces.Box(-1, 1, (1,), np.float32))
    assert [layer["lin"]["w"].shape for layer in small["enc"]["mlp"]] == [(5, 1024)] + [(1024, 1024)] * 4
    assert [len(small[k]["mlp"]) for k in ("rew", "val")] == [2, 2]
    assert small["rew"]["mlp"][0]["lin"]["w"].shape[1] == 512


def test_dreamerv3_keeps_its_own_layers():
    p, learner = _shapes("dreamerv3", "crafter")
    assert _kinds(p) == {nets.V3_LAYER} and p["enc"]["layout"].name == "v3"
    assert "initial" not in p["dyn"] and [len(p[k]["mlp"]) for k in ("rew", "val")] == [1, 3]


@pytest.mark.parametrize("key, value, message", [
    ("layers.act", "tanh", "agent.layers.act 'tanh'; valid: silu, elu, relu"),
    ("layers.norm", "batch", "agent.layers.norm 'batch'; valid: rms, layer, none"),
    ("codec.image", "resnet", "agent.codec.image 'resnet'; valid: v3, strided, strided_same"),
    ("codec.conv_act", "gelu", "agent.codec.conv_act 'gelu'; valid: silu, elu, relu"),
    ("rssm.initial", "random", "agent.rssm.initial 'random'; valid: zeros, learned"),
])
def test_unknown_layer_choices_name_the_valid_ones(key, value, message):
    with pytest.raises(ValueError, match=message):
        dreamer_config.validate(preset_config("dreamerv2", **{key: value}))
