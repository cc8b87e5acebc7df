"""CoPL product tests: a tiny local BERT as the reward backbone, tiny epochs, and UF-P-like
comparisons from the offline world stored as real feedback rows."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from apps.accounts.models import User
from apps.feedback.models import Comparison
from tests.support.factories import UserFactory
from workers.collab.data import PreferencePair
from workers.collab.ufp import UFPConfig, generate_ufp

GROUPS = (("format", "bullets"), ("emoji", "yes"))


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.workers.collab.conftest import tiny_bert, tiny_tokenizer

    folder = tmp_path_factory.mktemp("collab-tiny-bert")
    tokenizer = tiny_tokenizer()
    tiny_bert(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def copl_settings(settings, tmp_path, tiny_backbone):
    """Small, fast CoPL settings (the embedding width stays the stored 64)."""
    settings.ATTUNE_COPL_ROOT = tmp_path / "collab"
    settings.ATTUNE_COPL_MIN_PAIRS = 16
    settings.ATTUNE_COPL_MIN_USERS = 4
    settings.ATTUNE_COPL_HELDOUT_SHARE = 0.2
    settings.ATTUNE_COPL_DEVICE = "cpu"
    settings.ATTUNE_COPL_GNN = {"layers": 2, "edge_dropout": 0.1, "epochs": 60, "lr": 1e-2}
    settings.ATTUNE_COPL_REWARD = {
        "backbone": str(tiny_backbone),
        "n_experts": 2,
        "rank": 4,
        "layers": "1",
        "max_length": 48,
    }
    settings.ATTUNE_COPL_TRAIN = {"epochs": 3, "batch_size": 16, "lr": 1e-2}
    settings.ATTUNE_COPL_NEIGHBORS = 5
    return settings


@dataclass
class World:
    """Users by group, and what the unseen users would rate (not stored yet)."""

    groups: dict[str, list[User]] = field(default_factory=dict)
    group_of: dict[int, str] = field(default_factory=dict)
    unseen: dict[str, list[PreferencePair]] = field(default_factory=dict)
    pairs: list[PreferencePair] = field(default_factory=list)
    tests: list[PreferencePair] = field(default_factory=list)
    users: dict[str, User] = field(default_factory=dict)

    def seen(self, group: str) -> list[User]:
        """The group's users whose pairs are stored (in the trained graph once trained)."""
        return [u for u in self.groups[group] if u.pk not in self.unseen]


def store_pairs(user: User, pairs: list[PreferencePair], seed: int = 0) -> None:
    """Each pair as a comparison row (the chosen text on a random side)."""
    rng = random.Random(f"{user.pk}:{seed}")
    for pair in pairs:
        first = rng.random() < 0.5
        a, b = (pair.chosen, pair.rejected) if first else (pair.rejected, pair.chosen)
        Comparison.objects.create(
            user=user, prompt=pair.prompt, response_a=a, response_b=b, choice="a" if first else "b"
        )


def make_world(n_users: int = 12, client_app=None, seed: int = 0) -> World:
    """UF-P-like users in two groups (bullets lovers, emoji lovers); seen users' train pairs are
    stored as comparisons, unseen users' four ratings are kept aside."""
    config = UFPConfig(
        n_users=n_users,
        groups=GROUPS,
        min_pairs=6,
        max_pairs=8,
        test_pairs=1,
        unseen_fraction=0.2,
        unseen_train_pairs=4,
        pool_pairs=16,
        test_pool_pairs=8,
        seed=seed,
    )
    world = World()
    users: dict[str, User] = {}
    for pair in generate_ufp(config):
        if pair.user_id not in users:
            extra = {"client_app": client_app, "external_id": pair.user_id} if client_app else {}
            users[pair.user_id] = UserFactory(**extra)
            user = users[pair.user_id]
            world.groups.setdefault(pair.group, []).append(user)
            world.group_of[user.pk] = pair.group
        if pair.split == "train":
            world.pairs.append(pair)
        elif pair.split == "test":
            world.tests.append(pair)
        elif pair.split == "unseen_train":
            world.unseen.setdefault(pair.user_id, []).append(pair)
    by_id: dict[str, list[PreferencePair]] = {}
    for pair in world.pairs:
        by_id.setdefault(pair.user_id, []).append(pair)
    for user_id, user_pairs in by_id.items():
        store_pairs(users[user_id], user_pairs, seed)
    world.unseen = {users[u].pk: p for u, p in world.unseen.items()}  # type: ignore[misc]
    world.users = users
    return world


def train_now(**kwargs):
    """Request a run and execute the real Celery task eagerly; returns the version row."""
    from apps.collab import services
    from apps.collab.tasks import train

    run, created = services.request_training(enqueue=False, **kwargs)
    assert created
    train.apply(args=[run.pk], task_id=f"copl-test-{run.pk}").get()
    run.refresh_from_db()
    return run


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not spin on a busy shared machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
