"""The rollout buffer and generalised advantage estimation, in the loop's step convention.

The loop hands the agent one step at a time: row t holds obs_t, the action a_t chosen there, and the
reward and flags of *arriving* at obs_t. A PPO transition (s_t, a_t, r_{t+1}, done_{t+1}) therefore
spans two rows, so a rollout of `length` transitions per env needs `length + 1` rows; the last row
only closes the last transition and becomes row 0 of the next rollout.

Episode boundaries: the action chosen at an `is_last` row is never executed (the env resets instead and
the next row is `is_first` with reward 0), so `is_last` rows are kept in the buffer to keep all envs in
step but masked out of the loss, and the pair (is_last, is_first) is not a transition. Rollout length
therefore counts loop steps, the same steps every agent is measured in, and a batch holds slightly
fewer than envs x length transitions (one fewer per episode that ended).

Time limits: at an `is_last` row that is not `is_terminal` the episode was truncated, and the row still
carries the final observation, so the transition into it bootstraps with V(final obs) instead of
treating the cut as death. CleanRL's ppo_atari.py treats truncation as termination because gym's old
autoreset hid the final observation; here it is available, so we use it.
"""

from __future__ import annotations

import torch


def gae(
    rewards: torch.Tensor,  # (T+1, B): reward of arriving at each row (row 0's is unused)
    values: torch.Tensor,  # (T+1, B): V(obs) of each row
    is_last: torch.Tensor,  # (T+1, B) bool
    is_terminal: torch.Tensor,  # (T+1, B) bool
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets (returns) for the T transitions starting at rows 0..T-1."""
    steps = rewards.shape[0] - 1
    advantages = torch.zeros_like(values[:-1])
    running = torch.zeros_like(values[0])
    for t in reversed(range(steps)):
        bootstrap = (~is_terminal[t + 1]).to(values.dtype)  # a truncated episode still has a future
        carry = (~is_last[t + 1]).to(values.dtype)  # no advantage flows back across an episode end
        delta = rewards[t + 1] + gamma * bootstrap * values[t + 1] - values[t]
        running = delta + gamma * lam * carry * running
        advantages[t] = running
    return advantages, advantages + values[:-1]


class RolloutBuffer:
    """`length + 1` rows of named tensors per env, filled row by row; see the module docstring."""

    def __init__(self, length: int, specs: dict[str, tuple[tuple[int, ...], torch.dtype]], device: torch.device):
        self.length = length
        self.data = {
            name: torch.zeros((length + 1, *shape), dtype=dtype, device=device)
            for name, (shape, dtype) in specs.items()
        }
        self.rows = 0

    @property
    def full(self) -> bool:
        return self.rows == self.length + 1

    def add(self, row: dict[str, torch.Tensor]) -> None:
        if self.full:
            raise RuntimeError("rollout buffer is full: call the update before adding more steps")
        if self.rows > 0:
            # An episode that restarts without having ended (envs rebuilt on resume) was cut short
            # at the previous row: mark it as a time-limit end so it bootstraps and is masked.
            cut = row["is_first"] & ~self.data["is_last"][self.rows - 1]
            self.data["is_last"][self.rows - 1] |= cut
        for name, tensor in self.data.items():
            tensor[self.rows] = row[name]
        self.rows += 1

    def restart(self) -> None:
        """Keep the last row, which starts the next rollout."""
        for tensor in self.data.values():
            tensor[0] = tensor[-1]
        self.rows = 1

    def state_dict(self) -> dict:
        return {"rows": self.rows, **{k: v[: self.rows].cpu() for k, v in self.data.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.rows = state["rows"]
        for name, tensor in self.data.items():
            tensor[: self.rows] = state[name].to(tensor.device)
