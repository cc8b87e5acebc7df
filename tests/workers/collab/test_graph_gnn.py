"""Signed graph construction and normalization; the GNN separates two opposed groups; cold start."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from workers.collab.coldstart import adapt_user, persona_fallback
from workers.collab.gnn import GNNConfig, load_embeddings, operators, save_embeddings, train_gnn
from workers.collab.graph import build_graph

TOY = [("u1", "a", "b"), ("u2", "b", "a"), ("u1", "c", "a"), ("u1", "c", "a")]


def test_graph_nodes_edges_and_pairs() -> None:
    graph = build_graph(TOY)
    assert graph.user_ids == ("u1", "u2")
    assert graph.texts == ("a", "b", "c")
    assert graph.pos_edges.tolist() == [[0, 0], [0, 2], [1, 1]]
    assert graph.neg_edges.tolist() == [[0, 0], [0, 1], [1, 0]]
    assert graph.pairs.tolist() == [[0, 0, 1], [1, 1, 0], [0, 2, 0], [0, 2, 0]]


@pytest.mark.parametrize("sign", [1, -1])
def test_adjacency_is_the_symmetric_normalization(sign: int) -> None:
    graph = build_graph(TOY)
    edges = graph.pos_edges if sign == 1 else graph.neg_edges
    n_u, n_r = graph.n_users, graph.n_responses
    full = torch.zeros(n_u + n_r, n_u + n_r)
    for u, r in edges.tolist():
        full[u, n_u + r] = full[n_u + r, u] = 1.0
    degree = full.sum(1)
    inv = torch.where(degree > 0, degree.rsqrt(), torch.zeros_like(degree))
    expected = (inv[:, None] * full * inv[None, :])[:n_u, n_u:]
    got = graph.adjacency(sign)
    assert got.is_sparse
    assert torch.allclose(got.to_dense(), expected)


def test_edge_dropout_drops_edges_and_renormalizes() -> None:
    graph = build_graph([(f"u{i}", f"a{i}", f"b{i}") for i in range(200)])
    kept = graph.adjacency(1, edge_dropout=0.5, generator=torch.Generator().manual_seed(0))
    assert 60 < kept._nnz() < 140
    assert torch.allclose(kept.coalesce().values(), torch.ones(kept._nnz()))


def test_unknown_user_and_equal_texts_are_refused() -> None:
    with pytest.raises(ValueError, match="not in user_ids"):
        build_graph([("x", "a", "b")], user_ids=["y"])
    with pytest.raises(ValueError, match="equal"):
        build_graph([("x", "a", "a")])


def opposed_groups(n_users: int = 16, n_pairs: int = 12) -> list[tuple[str, str, str]]:
    """Group A prefers ``left_k`` and group B ``right_k`` on every shared comparison k."""
    pairs = []
    for user in range(n_users):
        for k in range(n_pairs):
            if (user + k) % 3 == 0:
                continue
            left, right = f"left{k}", f"right{k}"
            pairs.append((f"u{user}", *((left, right) if user % 2 == 0 else (right, left))))
    return pairs


SMALL = GNNConfig(dim=16, layers=2, edge_dropout=0.1, epochs=120, lr=1e-2)


@pytest.fixture(scope="module")
def trained():
    graph = build_graph(opposed_groups())
    return graph, train_gnn(graph, SMALL)


def test_gnn_fits_and_separates_groups(trained) -> None:
    graph, result = trained
    p = graph.pairs
    margins = (result.users[p[:, 0]] * (result.responses[p[:, 1]] - result.responses[p[:, 2]])).sum(
        -1
    )
    assert (margins > 0).all()
    assert result.history[-1] < result.history[0]
    group = torch.tensor([int(u[1:]) % 2 for u in result.user_ids])
    cosine = result.users @ result.users.T
    same = cosine[group[:, None] == group[None, :]].mean()
    other = cosine[group[:, None] != group[None, :]].mean()
    assert same > other + 0.5
    assert torch.allclose(result.users.norm(dim=1), torch.ones(len(group)), atol=1e-5)


def test_gnn_is_deterministic_and_saves(trained, tmp_path: Path) -> None:
    graph, result = trained
    again = train_gnn(graph, SMALL)
    assert torch.equal(again.users, result.users)
    loaded = load_embeddings(save_embeddings(result, tmp_path / "v1"))
    assert loaded.version == result.version and loaded.user_ids == result.user_ids
    assert torch.equal(loaded.users, result.users)
    assert torch.equal(loaded.chosen_edges, result.chosen_edges)
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.pkl"))


def test_cold_start_weights_follow_the_likelihood_softmax(trained) -> None:
    _, result = trained
    new_pairs = [("left0", "right0"), ("left1", "right1"), ("left2", "right2"), ("left4", "right4")]
    adapted = adapt_user(new_pairs, result, tau=0.07, top=100)
    assert adapted is not None and adapted.method == "shared-response" and adapted.pairs_used == 4
    index = result.text_index()
    chosen = torch.tensor([index[c] for c, _ in new_pairs])
    rejected = torch.tensor([index[r] for _, r in new_pairs])
    rows = [result.user_index()[u] for u in adapted.neighbors]
    scores = F.logsigmoid(result.pair_margins(result.users[rows], chosen, rejected)).mean(1)
    expected = torch.softmax(scores / 0.07, dim=0)
    assert torch.allclose(torch.tensor(adapted.weights), expected, atol=1e-5)
    # every candidate chose one of the new user's chosen texts: group A (even ids) here
    assert all(int(u[1:]) % 2 == 0 for u in adapted.neighbors)
    assert torch.isclose(adapted.embedding.norm(), torch.tensor(1.0))


def test_cold_start_without_graph_overlap_is_none(trained) -> None:
    _, result = trained
    assert adapt_user([("never", "seen")], result) is None


def test_persona_fallback_weights_nearest_personas() -> None:
    personas = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    users = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    result = persona_fallback(torch.tensor([1.0, 0.05]), personas, users, ["a", "b", "c"], k=2)
    assert set(result.neighbors) == {"a", "b"} and result.method == "persona"
    sims = F.normalize(personas[:2], dim=1) @ F.normalize(torch.tensor([1.0, 0.05]), dim=0)
    weights = torch.softmax(sims / 0.07, dim=0)
    expected = F.normalize(weights @ users[:2], dim=0)
    assert torch.allclose(result.embedding, expected, atol=1e-6)
    assert abs(sum(result.weights) - 1.0) < 1e-6


def test_large_graphs_take_the_sparse_path_and_learn_the_same(trained, monkeypatch) -> None:
    graph, dense = trained
    monkeypatch.setattr("workers.collab.gnn.DENSE_LIMIT", 0)  # every graph counts as large
    forward, backward = operators(graph.adjacency(1), "cpu")
    assert forward.layout == backward.layout == torch.sparse_csr
    assert torch.allclose(backward.to_dense(), forward.to_dense().T)
    sparse = train_gnn(graph, SMALL)
    assert torch.allclose(sparse.users, dense.users, atol=1e-4)
    assert torch.allclose(sparse.responses, dense.responses, atol=1e-4)
