"""Baseline rewards for the CoPL benchmark, all on frozen text features (one row per text).

* **global BT**: one linear reward ``w . f(x)`` for everybody, fitted on every pair.
* **per-user**: one linear reward per user, fitted on that user's pairs only (L2-regularized
  logistic regression on ``f(chosen) - f(rejected)``, no sharing between users).
* **LoRe-style low rank**: ``r_u(x) = w_u . (V f(x))`` with a shared basis ``V`` of ``rank`` reward
  directions and per-user weights ``w_u``, fitted jointly on seen users; a new user only fits
  ``w_u`` (``rank`` numbers) on their few pairs, with ``V`` frozen (LoRe, Bose et al. 2025).

All losses are Bradley-Terry: ``-log sigmoid(r(chosen) - r(rejected))``. The default L2 weights
were picked by a small sweep on generated data of a validation seed (100) that the benchmark's
seeds do not use; each baseline got its best value there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PairIndex:
    """Pairs as index tensors: user row, and the feature rows of the chosen and rejected texts."""

    users: torch.Tensor
    chosen: torch.Tensor
    rejected: torch.Tensor

    def __len__(self) -> int:
        return len(self.users)

    def differences(self, features: torch.Tensor) -> torch.Tensor:
        """[P, D] ``f(chosen) - f(rejected)``."""
        return features[self.chosen] - features[self.rejected]


def accuracy(margins: torch.Tensor) -> float:
    """Share of pairs with a positive margin (a tie counts half)."""
    if not len(margins):
        return float("nan")
    return float(((margins > 0).float() + 0.5 * (margins == 0).float()).mean())


def _lbfgs(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], steps: int) -> None:
    optimizer = torch.optim.LBFGS(
        params, lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimizer.step(closure)


def _per_user_mean(values: torch.Tensor, users: torch.Tensor, n_users: int) -> torch.Tensor:
    """Sum over users of each user's mean value (users without pairs add nothing)."""
    counts = torch.bincount(users, minlength=n_users).clamp_min(1).float()
    return (values / counts[users]).sum()


def fit_global(
    features: torch.Tensor, pairs: PairIndex, l2: float = 1e-4, steps: int = 200
) -> torch.Tensor:
    """The global linear reward ``w`` [D] (mean BT loss + ``l2/2 |w|^2``)."""
    diffs = pairs.differences(features)
    weight = torch.zeros(features.shape[1], requires_grad=True)
    _lbfgs(
        [weight],
        lambda: F.softplus(-(diffs @ weight)).mean() + 0.5 * l2 * weight.pow(2).sum(),
        steps,
    )
    return weight.detach()


def global_margins(weight: torch.Tensor, features: torch.Tensor, pairs: PairIndex) -> torch.Tensor:
    return pairs.differences(features) @ weight


def fit_per_user(
    features: torch.Tensor, pairs: PairIndex, n_users: int, l2: float = 1e-3, steps: int = 200
) -> torch.Tensor:
    """Per-user linear rewards ``W`` [n_users, D]: for every user separately, the mean BT loss of
    their own pairs + ``l2/2 |w_u|^2`` (one joint L-BFGS run; the problems do not interact)."""
    return _fit_user_weights(pairs.differences(features), pairs.users, n_users, l2, steps)


def _fit_user_weights(
    diffs: torch.Tensor, users: torch.Tensor, n_users: int, l2: float, steps: int
) -> torch.Tensor:
    """``W`` [n_users, D] minimizing each user's mean BT loss on their pairs' feature
    differences ``diffs`` [P, D] (row p belongs to ``users[p]``) + ``l2/2 |W|^2``."""
    weights = torch.zeros(n_users, diffs.shape[1], requires_grad=True)

    def loss() -> torch.Tensor:
        margins = (weights[users] * diffs).sum(-1)
        return (
            _per_user_mean(F.softplus(-margins), users, n_users) + 0.5 * l2 * weights.pow(2).sum()
        )

    _lbfgs([weights], loss, steps)
    return weights.detach()


def per_user_margins(
    weights: torch.Tensor, features: torch.Tensor, pairs: PairIndex
) -> torch.Tensor:
    return (weights[pairs.users] * pairs.differences(features)).sum(-1)


@dataclass(frozen=True)
class LowRankReward:
    """LoRe-style reward: shared basis ``basis`` [rank, D], user weights ``weights`` [U, rank]."""

    basis: torch.Tensor
    weights: torch.Tensor

    def margins(self, features: torch.Tensor, pairs: PairIndex) -> torch.Tensor:
        projected = pairs.differences(features) @ self.basis.T
        return (self.weights[pairs.users] * projected).sum(-1)


def fit_lore(
    features: torch.Tensor,
    pairs: PairIndex,
    n_users: int,
    rank: int = 8,
    l2: float = 1e-3,
    epochs: int = 300,
    lr: float = 0.05,
    seed: int = 0,
) -> LowRankReward:
    """Fit basis and user weights jointly (full-batch Adam on the per-user mean BT loss)."""
    generator = torch.Generator().manual_seed(seed)
    basis = (torch.randn(rank, features.shape[1], generator=generator) * 0.1).requires_grad_()
    weights = (torch.randn(n_users, rank, generator=generator) * 0.1).requires_grad_()
    diffs = pairs.differences(features)
    optimizer = torch.optim.Adam([basis, weights], lr=lr)
    for _ in range(epochs):
        margins = ((diffs @ basis.T) * weights[pairs.users]).sum(-1)
        loss = _per_user_mean(F.softplus(-margins), pairs.users, n_users) / max(n_users, 1)
        loss = loss + l2 * (basis.pow(2).sum() + weights.pow(2).sum() / max(n_users, 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return LowRankReward(basis.detach(), weights.detach())


def fit_lore_users(
    basis: torch.Tensor,
    features: torch.Tensor,
    pairs: PairIndex,
    n_users: int,
    l2: float = 0.01,
    steps: int = 100,
) -> LowRankReward:
    """Few-shot LoRe for new users: fit only their weights on ``pairs``, basis frozen."""
    projected = pairs.differences(features) @ basis.T
    return LowRankReward(basis, _fit_user_weights(projected, pairs.users, n_users, l2, steps))
