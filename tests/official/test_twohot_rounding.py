"""A deviation of the official stack, not of its code: the rounding of the twohot mean's symmetric sum.

The official `TwoHot.pred` adds each bin's product p(b) * b to its mirror's p(-b) * -b before summing,
so that equal probabilities on both sides of 0 give exactly 0 (its comment says so). Compiled by the
official code's jax 0.4.33 for the CPU, the fused add contracts one product into a fused multiply-add:
one product is rounded to float32 and the other is not, and each pair leaves up to half an ulp of its
product (terms up to 1.9e6, ulp 0.125). Early in training the reward and value heads (zero-initialised
outputs) are in exactly that state: the bins away from the centre share one logit, only the centre
bins move, and the real predictions are zero to a few 1e-7. The same formula compiled by our jax 0.10.2
keeps the cancellation here and, as our runs' advantage statistics show, in our train step; whether a
fusion contracts is the compiler's choice, so neither is guaranteed. docs/official_mapping.md
(Findings) measures what the noise does to learning.
"""

import json
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents.dreamer import dists

pytestmark = pytest.mark.official

N, SAMPLES, SCALE = 255, 2048, 1e-4

# The official side computes the mean of the logits saved by the test (argv[1]) with its TwoHot.
OFFICIAL = f"""
import json, sys, jax, jax.numpy as jnp, numpy as np
import embodied.jax.nets as nets, embodied.jax.outs as outs
m = ({N} - 1) // 2
half = nets.symexp(jnp.linspace(-20, 0, m + 1, dtype=jnp.float32))
bins = jnp.concatenate([half, -half[:-1][::-1]], 0)  # as heads.symexp_twohot
logits = np.load(sys.argv[1])
pred = lambda x: outs.TwoHot(x, bins).pred()
print(json.dumps({{"jit": np.asarray(jax.jit(pred)(logits), np.float64).tolist(),
                  "eager": np.asarray(pred(jnp.asarray(logits)), np.float64).tolist()}}))
"""


def early_logits() -> np.ndarray:
    """Logits as an early reward or value head gives them: 0 everywhere but the five centre bins."""
    m = (N - 1) // 2
    logits = np.zeros((SAMPLES, N), np.float32)
    logits[:, m - 2:m + 3] = SCALE * np.random.default_rng(0).standard_normal((SAMPLES, 5))
    return logits


def test_the_official_stack_loses_the_symmetric_sum_under_jit_and_ours_keeps_it(official_python, tmp_path):
    logits = early_logits()
    np.save(tmp_path / "logits.npy", logits)
    probs = np.exp(logits.astype(np.float64))
    probs /= probs.sum(-1, keepdims=True)
    exact = (probs * np.asarray(dists.twohot_bins(N), np.float64)).sum(-1)
    assert exact.std() < 1e-6  # what the predictions really are: zero, to a few 1e-7

    done = subprocess.run([str(official_python), "-c", OFFICIAL, str(tmp_path / "logits.npy")],
                          capture_output=True, text=True, check=True)
    official = {k: np.array(v) for k, v in json.loads(done.stdout.splitlines()[-1]).items()}
    ours = np.asarray(jax.jit(dists.twohot_mean)(jnp.asarray(logits), dists.twohot_bins(N)), np.float64)

    # The official formula itself is exact: eagerly it gives the real predictions.
    np.testing.assert_allclose(official["eager"], exact, atol=1e-5)
    # Compiled on its own stack: rounding noise over a thousand times the predictions' real spread.
    assert official["jit"].std() > 0.01 > 1000 * exact.std()
    # Ours under jit stays with the exact values.
    np.testing.assert_allclose(ours, exact, atol=1e-5)
