"""PPO's clipped surrogate objective and clipped value loss (as minimised, CleanRL's formulation)."""

from __future__ import annotations

import torch


def policy_loss(ratio: torch.Tensor, advantage: torch.Tensor, clip: float) -> torch.Tensor:
    """-E[min(r A, clip(r, 1-eps, 1+eps) A)]: no gain from moving the ratio past the clip range."""
    unclipped = ratio * advantage
    clipped = ratio.clamp(1 - clip, 1 + clip) * advantage
    return -torch.min(unclipped, clipped).mean()


def value_loss(value: torch.Tensor, old_value: torch.Tensor, target: torch.Tensor, clip: float | None) -> torch.Tensor:
    """0.5 E[(V - target)^2]; with `clip`, the pessimistic max over V kept within +-clip of old_value."""
    squared = (value - target) ** 2
    if clip is None:
        return 0.5 * squared.mean()
    clipped = old_value + (value - old_value).clamp(-clip, clip)
    return 0.5 * torch.max(squared, (clipped - target) ** 2).mean()
