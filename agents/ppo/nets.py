"""PPO's actor-critic networks, initialised as in CleanRL (orthogonal, policy head gain 0.01).

Images go through the Nature CNN (a trunk shared by actor and critic, as in CleanRL's ppo_atari.py),
with any selected vectors appended to its 512 features. Vector-only observations get separate actor and
critic MLPs with tanh (as in CleanRL's ppo.py and ppo_continuous_action.py). Discrete actions use a
categorical head; Box actions a Gaussian with a state-independent log std.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def layer_init(layer: nn.Module, gain: float = math.sqrt(2), bias: float = 0.0) -> nn.Module:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.constant_(layer.bias, bias)
    return layer


class NatureCNN(nn.Module):
    """Mnih et al. (2015): three convs and a 512-unit layer; input uint8 (B, C, H, W), scaled here."""

    def __init__(self, channels: int, size: int, features: int = 512) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            layer_init(nn.Conv2d(channels, 32, 8, stride=4)), nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, channels, size, size)).shape[1]
        self.out = nn.Sequential(layer_init(nn.Linear(flat, features)), nn.ReLU())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.out(self.convs(image.float() / 255.0))


def mlp(inputs: int, hidden: list[int], outputs: int, out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for units in hidden:
        layers += [layer_init(nn.Linear(inputs, units)), nn.Tanh()]
        inputs = units
    layers.append(layer_init(nn.Linear(inputs, outputs), gain=out_gain))
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Maps (image, vector) to action-distribution parameters and a value.

    `image` is None when the observation has no image key selected; `vector` is None (or width 0)
    when it has no vector. `action_dim` is the number of discrete actions or the Box dimension.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int] | None,  # (C, H, W) after preprocessing
        vector_dim: int,
        action_dim: int,
        continuous: bool,
        hidden: list[int],
    ) -> None:
        super().__init__()
        self.continuous = continuous
        if image_shape is not None:
            channels, size, _ = image_shape
            self.cnn: NatureCNN | None = NatureCNN(channels, size)
            features = 512 + vector_dim
            self.actor_head = layer_init(nn.Linear(features, action_dim), gain=0.01)
            self.critic_head = layer_init(nn.Linear(features, 1), gain=1.0)
        else:
            self.cnn = None
            self.actor_head = mlp(vector_dim, hidden, action_dim, out_gain=0.01)
            self.critic_head = mlp(vector_dim, hidden, 1, out_gain=1.0)
        if continuous:
            self.log_std = nn.Parameter(torch.zeros(action_dim))

    def features(self, image: torch.Tensor | None, vector: torch.Tensor | None) -> torch.Tensor:
        parts = []
        if self.cnn is not None:
            parts.append(self.cnn(image))
        if vector is not None and vector.shape[-1] > 0:
            parts.append(vector)
        return torch.cat(parts, -1)

    def forward(
        self, image: torch.Tensor | None, vector: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (logits or Gaussian mean, value of shape (B,))."""
        x = self.features(image, vector)
        return self.actor_head(x), self.critic_head(x).squeeze(-1)

    def policy(self, image: torch.Tensor | None, vector: torch.Tensor | None) -> torch.Tensor:
        return self.actor_head(self.features(image, vector))

    def value(self, image: torch.Tensor | None, vector: torch.Tensor | None) -> torch.Tensor:
        return self.critic_head(self.features(image, vector)).squeeze(-1)

    def distribution(self, head: torch.Tensor) -> torch.distributions.Distribution:
        if self.continuous:
            std = self.log_std.exp().expand_as(head)
            return torch.distributions.Independent(torch.distributions.Normal(head, std), 1)
        return torch.distributions.Categorical(logits=head)

    def sample(self, head: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Sample with the agent's own generator, so a checkpoint restores the action stream."""
        if self.continuous:
            noise = torch.randn(head.shape, generator=generator, device=head.device)
            return head + self.log_std.exp() * noise
        probs = torch.softmax(head, -1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
