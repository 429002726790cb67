"""Where the Dreamer agent computes (`agent.devices`): the train step's devices and the policy's.

`devices.train: N` runs the train step data-parallel on the first N local devices, as the official code's
`jax.train_devices`: the batch is split over them along its first axis, the parameters, optimiser state and
key are replicated, and XLA sums the gradients (and every mean or percentile over the batch, such as the
return normaliser's) across them. An update thus computes what it computes on one device, up to the order
of float additions. `devices.policy` picks the device the policy acts on, as `jax.policy_devices`: `same`,
the first train device, or `last`, the last local device, apart from training where there are more local
devices than train devices. One process drives its node's devices; a run does not span nodes.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

POLICIES = ("same", "last")
BATCH = "batch"  # the mesh axis the batch is split over


@dataclasses.dataclass(frozen=True)
class Placement:
    """The train step's mesh (one axis, `BATCH`, over the train devices) and the policy's device."""

    mesh: Mesh
    policy: jax.Device

    @property
    def replicated(self) -> NamedSharding:
        """A whole copy on every train device: the train state and the key."""
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def batch(self) -> NamedSharding:
        """Split along the first axis: the batch and the latents the step returns."""
        return NamedSharding(self.mesh, PartitionSpec(BATCH))

    @property
    def policy_shares_state(self) -> bool:
        """Whether the policy can act on the train state's own parameters: one train device, the policy's."""
        return self.mesh.devices.size == 1 and self.mesh.devices.flat[0] == self.policy


def validate(devices: object, batch_size: int) -> None:
    """Raise ValueError unless `devices` is {train: N >= 1, policy: same | last} and N divides the batch.

    The local devices are not counted here: the config is checked where the run is planned, which need
    not be the machine it runs on (`place` counts them)."""
    train = devices.get("train") if isinstance(devices, dict) else None
    if isinstance(train, bool) or not isinstance(train, int) or train < 1:
        raise ValueError(f"agent.devices.train must be a number of devices >= 1, got {train!r}")
    if devices.get("policy") not in POLICIES:
        raise ValueError(f"unknown agent.devices.policy {devices.get('policy')!r}; valid: {', '.join(POLICIES)}")
    if int(batch_size) % train:
        raise ValueError(f"agent.batch_size {batch_size} does not divide by agent.devices.train {train}: "
                         "each train device takes an equal share of the batch's sequences")


def place(devices: dict) -> Placement:
    """The placement of a validated `devices` setting on this process's local devices."""
    local = jax.local_devices()
    train = devices["train"]
    if train > len(local):
        raise ValueError(f"agent.devices.train={train} asks for more devices than this process has: "
                         f"{len(local)} local {local[0].platform} device(s)")
    policy = local[-1] if devices["policy"] == "last" else local[0]
    return Placement(Mesh(np.array(local[:train]), (BATCH,)), policy)
