"""CoPL's graph network: user and response embeddings from the signed graph, Bradley-Terry loss.

Every node starts from a learned ID embedding. Each layer passes messages along both signs with the
normalized adjacencies and combines them NGCF-style, adding positive messages and subtracting
negative ones::

    Z+ = A+ E',  Z- = A- E'          (E' = the other side's embeddings)
    E <- LeakyReLU(W_self E + Z+ + W+(Z+ * E) - (Z- + W-(Z- * E)))

After the last layer user embeddings are L2-normalized; a user prefers the response with the larger
dot product, and the loss is ``-log sigmoid(u.c - u.r)`` over rated pairs plus an L2 penalty.
The paper uses width 512, 4 layers, 10% edge dropout; width is configurable (the bench uses less).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from workers.collab.graph import SignedGraph

DENSE_LIMIT = 4_000_000
"""Adjacencies with at most this many user x response cells are made dense (faster on CPU)."""
FORMAT = "attune.copl.user-embeddings"
Adjacency = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
FORMAT_VERSION = 1


@dataclass(frozen=True)
class GNNConfig:
    """Model width and depth, edge dropout, and the full-batch Adam schedule."""

    dim: int = 512
    layers: int = 4
    edge_dropout: float = 0.1
    lr: float = 5e-3
    l2: float = 1e-4
    epochs: int = 300
    negative_slope: float = 0.2
    seed: int = 0


class SignedGNN(nn.Module):
    """ID embeddings plus ``layers`` signed NGCF-style propagation layers (weights shared by
    users and responses, as in the reference implementation)."""

    def __init__(self, n_users: int, n_responses: int, config: GNNConfig):
        super().__init__()
        self.config = config
        self.users = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_users, config.dim)))
        self.responses = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_responses, config.dim)))
        d, n = config.dim, config.layers
        self.w_self = nn.ModuleList(nn.Linear(d, d) for _ in range(n))
        self.w_pos = nn.ModuleList(nn.Linear(d, d) for _ in range(n))
        self.w_neg = nn.ModuleList(nn.Linear(d, d) for _ in range(n))

    def forward(self, adj_pos: Adjacency, adj_neg: Adjacency) -> tuple[torch.Tensor, ...]:
        """(normalized user embeddings [U, d], response embeddings [R, d]); each adjacency is
        the [U, R] matrix, or it and its transpose (:func:`operators`)."""
        (pos, pos_t), (neg, neg_t) = _pair(adj_pos), _pair(adj_neg)
        users, responses = self.users, self.responses
        for layer in range(self.config.layers):
            zu_pos, zu_neg = pos @ responses, neg @ responses
            zr_pos, zr_neg = pos_t @ users, neg_t @ users
            users, responses = (
                self._combine(layer, users, zu_pos, zu_neg),
                self._combine(layer, responses, zr_pos, zr_neg),
            )
        return F.normalize(users, dim=-1), responses

    def _combine(
        self, layer: int, own: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        mixed = (
            self.w_self[layer](own)
            + pos
            + self.w_pos[layer](pos * own)
            - (neg + self.w_neg[layer](neg * own))
        )
        return F.leaky_relu(mixed, self.config.negative_slope)


def bt_loss(users: torch.Tensor, responses: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Mean Bradley-Terry loss of (user, chosen, rejected) index triples under dot products."""
    u = users[pairs[:, 0]]
    margin = (u * (responses[pairs[:, 1]] - responses[pairs[:, 2]])).sum(-1)
    return F.softplus(-margin).mean()


@dataclass
class UserEmbeddings:
    """The product of GNN training: one vector per user and per response text, plus provenance.

    ``users`` rows are L2-normalized (store them as-is in pgvector, compare by cosine);
    ``version`` is a content hash that changes whenever the embeddings change.
    """

    user_ids: tuple[str, ...]
    users: torch.Tensor
    texts: tuple[str, ...]
    responses: torch.Tensor
    config: GNNConfig
    chosen_edges: torch.Tensor
    """[E+, 2] long: (user row, response row) of every positive edge (who chose what)."""
    history: list[float] = field(default_factory=list)

    @property
    def dim(self) -> int:
        return int(self.users.shape[1])

    @property
    def version(self) -> str:
        digest = hashlib.sha256(self.users.detach().cpu().numpy().tobytes())
        digest.update("\n".join(self.user_ids).encode())
        return digest.hexdigest()[:16]

    def user_index(self) -> dict[str, int]:
        return {user: i for i, user in enumerate(self.user_ids)}

    def text_index(self) -> dict[str, int]:
        return {text: i for i, text in enumerate(self.texts)}

    def embedding_of(self, user_id: str) -> torch.Tensor:
        """The embedding of one seen user; ``KeyError`` for an unknown id."""
        return self.users[self.user_index()[user_id]]

    def pair_margins(
        self, users: torch.Tensor, chosen: torch.Tensor, rejected: torch.Tensor
    ) -> torch.Tensor:
        """[K, P] margins ``u_k . (c_p - r_p)`` of K user vectors on P response-index pairs."""
        return users @ (self.responses[chosen] - self.responses[rejected]).T


def _pair(adjacency: Adjacency) -> tuple[torch.Tensor, torch.Tensor]:
    return adjacency if isinstance(adjacency, tuple) else (adjacency, adjacency.t())


def operators(adjacency: torch.Tensor, device: torch.device | str) -> Adjacency:
    """A normalized adjacency and its transpose as the GNN multiplies by them: dense when it has
    at most :data:`DENSE_LIMIT` cells (faster on CPU), else both in CSR (row-compressed sparse
    products run faster than COO ones, and a precomputed transpose avoids a sort per product)."""
    if adjacency.numel() <= DENSE_LIMIT:
        dense = adjacency.to_dense().to(device)
        return dense, dense.t()
    transposed = adjacency.t().coalesce()
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return adjacency.to_sparse_csr().to(device), transposed.to_sparse_csr().to(device)


def train_gnn(
    graph: SignedGraph,
    config: GNNConfig | None = None,
    progress: bool = False,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[int, float], None] | None = None,
) -> UserEmbeddings:
    """Fit the signed GNN on every rated pair of ``graph`` (full batch) and return embeddings
    (on the CPU, whatever ``device`` trained them). ``on_epoch(epoch, loss)`` is called after
    every epoch (a job's progress report)."""
    config = config or GNNConfig()
    if not len(graph.pairs):
        raise ValueError("the graph has no rated pairs to learn from")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = SignedGNN(graph.n_users, graph.n_responses, config).to(device)
    p = graph.pairs.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: list[float] = []
    steps = range(config.epochs)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="copl gnn", unit="epoch")
    model.train()
    for epoch in steps:
        adj_pos = operators(graph.adjacency(1, config.edge_dropout, generator), device)
        adj_neg = operators(graph.adjacency(-1, config.edge_dropout, generator), device)
        users, responses = model(adj_pos, adj_neg)
        loss = bt_loss(users, responses, p)
        reg = (
            users[p[:, 0]].pow(2).sum(-1)
            + responses[p[:, 1]].pow(2).sum(-1)
            + responses[p[:, 2]].pow(2).sum(-1)
        ).mean()
        optimizer.zero_grad()
        (loss + config.l2 * reg).backward()
        optimizer.step()
        history.append(loss.item())
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    model.eval()
    with torch.no_grad():
        users, responses = model(
            operators(graph.adjacency(1), device), operators(graph.adjacency(-1), device)
        )
    return UserEmbeddings(
        graph.user_ids,
        users.detach().cpu(),
        graph.texts,
        responses.detach().cpu(),
        config,
        graph.pos_edges.clone(),
        history,
    )


def save_embeddings(result: UserEmbeddings, directory: str | Path) -> Path:
    """Write ``embeddings.safetensors`` and ``meta.json`` (ids, texts, config) to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        "users": result.users.contiguous(),
        "responses": result.responses.contiguous(),
        "chosen_edges": result.chosen_edges.contiguous(),
    }
    save_file(tensors, str(directory / "embeddings.safetensors"))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": result.version,
        "dim": result.dim,
        "user_ids": list(result.user_ids),
        "texts": list(result.texts),
        "config": asdict(result.config),
        "final_loss": result.history[-1] if result.history else None,
    }
    (directory / "meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return directory


def load_embeddings(directory: str | Path) -> UserEmbeddings:
    """Read what :func:`save_embeddings` wrote; ``ValueError`` for another format or version."""
    directory = Path(directory)
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory} is not a {FORMAT} v{FORMAT_VERSION} artifact")
    tensors = load_file(str(directory / "embeddings.safetensors"))
    return UserEmbeddings(
        tuple(meta["user_ids"]),
        tensors["users"],
        tuple(meta["texts"]),
        tensors["responses"],
        GNNConfig(**meta["config"]),
        tensors["chosen_edges"],
    )
