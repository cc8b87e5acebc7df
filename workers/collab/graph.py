"""The signed bipartite user-response graph of CoPL, with normalized sparse adjacencies.

Nodes are users and responses; a response is one node per distinct text, whoever rated it. A rated
pair (user, chosen, rejected) adds a positive edge user-chosen and a negative edge user-rejected.
Each sign has its own symmetric-normalized adjacency ``D^-1/2 A D^-1/2`` over the user x response
biadjacency, with degrees counted per sign (a node without edges of a sign gets an empty row).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SignedGraph:
    """Users, responses, the unique signed edges, and the rated pairs as index triples."""

    user_ids: tuple[str, ...]
    texts: tuple[str, ...]
    pos_edges: torch.Tensor
    """[E+, 2] long: (user index, response index) of each positive edge, unique."""
    neg_edges: torch.Tensor
    """[E-, 2] long: (user index, response index) of each negative edge, unique."""
    pairs: torch.Tensor
    """[P, 3] long: (user, chosen, rejected) indices of every rated pair."""

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_responses(self) -> int:
        return len(self.texts)

    def user_index(self) -> dict[str, int]:
        """User id -> row of the user embedding matrix."""
        return {user: i for i, user in enumerate(self.user_ids)}

    def text_index(self) -> dict[str, int]:
        """Response text -> row of the response embedding matrix."""
        return {text: i for i, text in enumerate(self.texts)}

    def adjacency(
        self, sign: int, edge_dropout: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The normalized [n_users, n_responses] sparse biadjacency of one sign (+1 or -1).

        With ``edge_dropout`` > 0 each edge is dropped with that probability before normalizing.
        """
        if sign not in (1, -1):
            raise ValueError("sign must be +1 or -1")
        edges = self.pos_edges if sign == 1 else self.neg_edges
        if edge_dropout > 0.0 and len(edges):
            keep = torch.rand(len(edges), generator=generator) >= edge_dropout
            edges = edges[keep]
        return normalized_biadjacency(edges, self.n_users, self.n_responses)


def normalized_biadjacency(edges: torch.Tensor, n_rows: int, n_cols: int) -> torch.Tensor:
    """``D_r^-1/2 B D_c^-1/2`` as a coalesced sparse COO tensor, for a 0/1 biadjacency ``B``
    given by its unique ``edges`` [E, 2]; this is the user-response block of the symmetric
    normalization of the full (users + responses) adjacency."""
    edges = edges.long().reshape(-1, 2)
    rows, cols = edges[:, 0], edges[:, 1]
    row_degree = torch.bincount(rows, minlength=n_rows).float()
    col_degree = torch.bincount(cols, minlength=n_cols).float()
    values = row_degree[rows].rsqrt() * col_degree[cols].rsqrt()
    return torch.sparse_coo_tensor(
        torch.stack([rows, cols]),
        values,
        (n_rows, n_cols),
        dtype=torch.float32,
        check_invariants=False,
    ).coalesce()


def build_graph(
    pairs: Iterable[tuple[str, str, str]], user_ids: Sequence[str] | None = None
) -> SignedGraph:
    """Build the graph from (user_id, chosen text, rejected text) triples.

    Users are numbered in ``user_ids`` order when given (users without pairs stay isolated),
    else in first-seen order; responses in first-seen order. Repeated edges count once.
    """
    users: dict[str, int] = {u: i for i, u in enumerate(user_ids or ())}
    texts: dict[str, int] = {}
    triples: list[tuple[int, int, int]] = []
    for user, chosen, rejected in pairs:
        if chosen == rejected:
            raise ValueError(f"user {user!r} has a pair whose chosen and rejected texts are equal")
        if user not in users:
            if user_ids is not None:
                raise ValueError(f"user {user!r} is not in user_ids")
            users[user] = len(users)
        c = texts.setdefault(chosen, len(texts))
        r = texts.setdefault(rejected, len(texts))
        triples.append((users[user], c, r))
    index = torch.tensor(triples, dtype=torch.long).reshape(-1, 3)
    pos = torch.unique(index[:, [0, 1]], dim=0) if len(index) else index[:, :2]
    neg = torch.unique(index[:, [0, 2]], dim=0) if len(index) else index[:, :2]
    return SignedGraph(
        user_ids=tuple(users), texts=tuple(texts), pos_edges=pos, neg_edges=neg, pairs=index
    )
