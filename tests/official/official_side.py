"""The official side of the equivalence test; runs in .venv-official.

    python official_side.py shapes SETTINGS.json OUT.json    # parameter names and shapes
    python official_side.py init SETTINGS.json OUT.npz       # the initial parameters (settings' seed)
    python official_side.py train IN.npz OUT.npz             # one policy step, then train steps

IN (.npz): `param/<official name>` for every parameter (the mapped weights of our agent), `batch/<key>`
for the batch (B x T+1, step 0 is the replay context), `policy/<key>` for one policy step (observations
and `carry/deter`, `carry/stoch`, `carry/action`, one row per environment) and `settings` (JSON: size
configs, flags (batch, `jax.compute_dtype`), spaces, steps).
OUT (.npz): what the official agent computed, captured with jax.debug.callback (test-only): the policy
step's distribution (policy/mean and policy/stddev, or policy/logp), action (policy/action) and new
latent (policy/deter, policy/stoch); of the first train step tokens, post_logit, prior_logit,
loss/<term> (B, T), the imagined trajectory imag/<deter|stoch> (B*T, H, ...: the start state excluded),
imag/<act|ret|rew|con> (B*T, H+1 or H), grad/<official name>; and after<N>/<official name>
(parameters, slow critic, normaliser after the first and the last of `steps` train steps on the same
batch). Activations in the compute dtype bfloat16 come back as float32 (exactly).

Test-only injection of the random draws, the same on both sides: every sample is the distribution's
mode (latents: the one-hot argmax with straight-through gradients, `OneHot.pred`; discrete actions: the
argmax, `Categorical.pred`), and every continuous action is mean + 0.5 x std (a fixed draw: at the mean
itself the actor's gradient for its mean is 0).
"""

import json
import sys

import elements
import jax
import jax.numpy as jnp
import ninjax as nj
import numpy as np
import optax
import ruamel.yaml as yaml
import pathlib

import dreamerv3
import dreamerv3.agent as official_agent
from dreamerv3 import rssm as official_rssm
import embodied.jax.outs as outs
from embodied.jax import internal

CAPTURED: dict[str, np.ndarray] = {}
POLICY_NOISE = 0.5  # the fixed standard-normal draw of every continuous action (test_equivalence.py)
IN_POLICY_STEP = [False]  # set while Agent.policy is traced, so that `sample` captures its distribution


def host(x) -> np.ndarray:
    """On the host; bfloat16 (the compute dtype's activations) as float32, exactly, for np.savez."""
    x = np.asarray(x)
    return x.astype(np.float32) if x.dtype == jnp.bfloat16 else x


def capture(name, value):
    jax.debug.callback(lambda v: CAPTURED.__setitem__(name, jax.tree.map(host, v)), value)


def patch() -> None:
    outs.OneHot.sample = lambda self, seed, shape=(): self.pred()
    outs.Normal.sample = lambda self, seed, shape=(): self.mean + POLICY_NOISE * self.stddev
    outs.Categorical.sample = lambda self, seed, shape=(): self.pred()

    def sample_with_capture(dists):
        if IN_POLICY_STEP[0]:
            dist = getattr(dists["action"], "output", dists["action"])  # continuous heads wrap it in Agg
            if isinstance(dist, outs.Categorical):
                capture("policy/logp", jax.nn.log_softmax(dist.logits, -1))
            else:
                capture("policy/mean", dist.mean)
                capture("policy/stddev", dist.stddev)
        return jax.tree.map(lambda x: x.sample(nj.seed()), dists)

    official_agent.sample = sample_with_capture

    policy = official_agent.Agent.policy

    def policy_with_capture(self, carry, obs, mode="train"):
        IN_POLICY_STEP[0] = True
        try:
            return policy(self, carry, obs, mode)
        finally:
            IN_POLICY_STEP[0] = False

    official_agent.Agent.policy = policy_with_capture

    loss = official_agent.Agent.loss

    def loss_with_capture(self, carry, obs, prevact, training):
        total, (carry, entries, outputs, metrics) = loss(self, carry, obs, prevact, training)
        capture("tokens", outputs["tokens"])
        capture("post_logit", outputs["repfeat"]["logit"])
        capture("deter", outputs["repfeat"]["deter"])
        for key, value in outputs["losses"].items():
            capture(f"loss/{key}", value)
        capture("loss_total", total)
        return total, (carry, entries, outputs, metrics)

    official_agent.Agent.loss = loss_with_capture

    prior = official_rssm.RSSM._prior

    def prior_with_capture(self, feat):
        logit = prior(self, feat)
        if feat.ndim == 3:  # the prior along the observed sequence (imagination calls it per step)
            capture("prior_logit", logit)
        return logit

    official_rssm.RSSM._prior = prior_with_capture

    imagine = official_rssm.RSSM.imagine

    def imagine_with_capture(self, carry, policy, length, training, single=False):
        result = imagine(self, carry, policy, length, training, single)
        if not single:
            capture("imag/deter", result[1]["deter"])
            capture("imag/stoch", result[1]["stoch"])
        return result

    official_rssm.RSSM.imagine = imagine_with_capture

    imag_loss = official_agent.imag_loss

    def imag_loss_with_capture(act, rew, con, *args, **kwargs):
        losses, out, metrics = imag_loss(act, rew, con, *args, **kwargs)
        capture("imag/ret", out["ret"])
        capture("imag/rew", rew)
        capture("imag/con", con)
        capture("imag/act", act["action"])
        return losses, out, metrics

    official_agent.imag_loss = imag_loss_with_capture

    make_opt = official_agent.Agent._make_opt

    def make_opt_with_capture(self, **kw):
        def record(grads, state, params=None):
            capture("grads", grads)
            return grads, state
        recorder = optax.GradientTransformation(lambda params: optax.EmptyState(), record)
        return optax.chain(recorder, make_opt(self, **kw))

    official_agent.Agent._make_opt = make_opt_with_capture


def build(settings: dict):
    folder = pathlib.Path(dreamerv3.__file__).parent
    configs = yaml.YAML(typ="safe").load((folder / "configs.yaml").read_text())
    config = elements.Config(configs["defaults"])
    for name in settings["configs"]:
        config = config.update(configs[name])
    config = config.update(settings["flags"])
    spaces = {k: elements.Space(np.dtype(d), tuple(s), *bounds) for k, (d, s, *bounds) in settings["obs"].items()}
    acts = {k: elements.Space(np.dtype(d), tuple(s), *bounds) for k, (d, s, *bounds) in settings["act"].items()}
    jaxcfg = dict(config.jax, precompile=False, profiler=False)
    return official_agent.Agent(spaces, acts, elements.Config(
        **config.agent, logdir=settings["logdir"], seed=settings.get("seed", 0), jax=jaxcfg, batch_size=config.batch_size,
        batch_length=config.batch_length, replay_context=config.replay_context,
        report_length=config.report_length, replica=0, replicas=1))


def shapes(inp: str, out: str) -> None:
    """The official agent's parameter names and shapes, as JSON."""
    agent = build(json.loads(pathlib.Path(inp).read_text()))
    pathlib.Path(out).write_text(json.dumps({k: list(v.shape) for k, v in agent.params.items()}))


def init(inp: str, out: str) -> None:
    """The official agent's initial parameters (optimiser state left out), as .npz."""
    agent = build(json.loads(pathlib.Path(inp).read_text()))
    np.savez(out, **{k: np.asarray(v) for k, v in agent.params.items() if not k.startswith("opt/")})


def policy_step(agent, given: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One `agent.policy` call from the given latent and previous action on the given observations."""
    enc, dyn, dec, prevact = agent.init_policy(len(given["is_first"]))  # one device array per environment

    def rows(initial: list, value: np.ndarray) -> list:  # on the initial carry's devices (transfer guard)
        return [jax.device_put(v.astype(x.dtype), x.sharding) for x, v in zip(initial, value)]

    carry = (enc, {k: rows(dyn[k], given.pop(f"carry/{k}")) for k in ("deter", "stoch")}, dec,
             {"action": rows(prevact["action"], given.pop("carry/action"))})
    carry, acts, _ = agent.policy(carry, given, mode="train")
    jax.effects_barrier()
    result = {k: v for k, v in CAPTURED.items() if k.startswith("policy/")}
    result.update({"policy/action": host(acts["action"]),
                   "policy/deter": np.stack([host(x) for x in carry[1]["deter"]]),
                   "policy/stoch": np.stack([host(x) for x in carry[1]["stoch"]])})
    CAPTURED.clear()
    return result


def train(inp: str, out: str) -> None:
    patch()
    given = dict(np.load(inp))
    settings = json.loads(str(given.pop("settings")))
    agent = build(settings)
    params = {k.removeprefix("param/"): v for k, v in given.items() if k.startswith("param/")}
    unknown = sorted(set(params) - set(agent.params))
    if unknown:
        sys.exit(f"parameters the official agent does not have: {unknown}")
    for name, value in params.items():
        old = agent.params[name]
        if old.shape != value.shape:
            sys.exit(f"{name}: official shape {old.shape}, given {value.shape}")
        agent.params[name] = jax.device_put(value.astype(old.dtype), old.sharding)
    agent.policy_params = internal.move({k: agent.params[k].copy() for k in agent.policy_keys},
                                        agent.policy_params_sharding)  # as Agent.load does
    result = policy_step(agent, {k.removeprefix("policy/"): v for k, v in given.items() if k.startswith("policy/")})
    data = {k.removeprefix("batch/"): v for k, v in given.items() if k.startswith("batch/")}
    B = data["is_first"].shape[0]
    data = internal.device_put(data, agent.train_sharded)  # as the official batch stream does
    for step in range(1, settings["steps"] + 1):  # the same batch every step
        agent.train(agent.init_train(B), {**data, "seed": agent._seeds(0, agent.train_mirrored)})
        jax.effects_barrier()
        if step == 1:
            result.update({k: v for k, v in CAPTURED.items() if k != "grads"})
            result.update({f"grad/{k}": np.asarray(v) for k, v in CAPTURED["grads"].items()})
        if step in (1, settings["steps"]):
            result.update({f"after{step}/{k}": np.asarray(v) for k, v in agent.params.items()
                           if not k.startswith("opt/")})
    np.savez(out, **result)


if __name__ == "__main__":
    {"shapes": shapes, "init": init, "train": train}[sys.argv[1]](sys.argv[2], sys.argv[3])
