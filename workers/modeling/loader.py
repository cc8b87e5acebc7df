"""One loader for the base model, for training and generation alike.

``ATTUNE_BASE_MODEL`` names a Hugging Face causal LM (hub id or local path), a model folder in the
artifact store (its ref, ``sha256:…``: how several machines share one built model), or the
built-in offline style model (``attune/style-lm``, the default), which is built and cached on first
use.
"""

from __future__ import annotations

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from core import config as attune_config
from core.artifacts import REF_PREFIX
from workers.modeling.copy_config import CopyLlamaConfig
from workers.modeling.style_lm import builtin_style_lm
from workers.modeling.token_tables import (
    list_item_tables,
    unwritten_special_ids,
    vocabulary_texts,
)


def resolve_model_path(name: str | None = None) -> str:
    """The hub id or local folder to load for ``name`` (default ``$ATTUNE_BASE_MODEL``): the
    built-in style model's name becomes its cached folder, built first if missing; an artifact
    ref becomes this node's cached copy of it, fetched first if missing."""
    name = name or attune_config.base_model_name()
    if name == attune_config.STYLE_LM_NAME:
        return str(builtin_style_lm())
    if name.startswith(REF_PREFIX):
        return str(attune_config.artifact_store().fetch(name))
    return name


def default_device() -> torch.device:
    """The first GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_tokenizer(name: str | None = None) -> PreTrainedTokenizerBase:
    """The base model's tokenizer, with a pad token (the EOS token when it has none)."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(
    name: str | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base causal LM (in eval mode, on ``device``) and its tokenizer.

    ``dtype`` defaults to float32 on the CPU and to the checkpoint's own dtype on a GPU.
    """
    path = resolve_model_path(name)
    target = torch.device(device) if device is not None else default_device()
    chosen = dtype or (torch.float32 if target.type == "cpu" else "auto")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=chosen)
    tokenizer = load_tokenizer(path)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if isinstance(model.config, CopyLlamaConfig):
        _fill_tables(model.config, tokenizer)
    return model.to(target).eval(), tokenizer


def _fill_tables(config: CopyLlamaConfig, tokenizer: PreTrainedTokenizerBase) -> None:
    """Fill in the token tables a build saved before they were (decoding reads them, no weight
    does): the list items' tokens (the repeat guard) and the special tokens an answer never
    holds (decoding rules them out)."""
    if not config.list_marker_token_ids:
        for name, ids in list_item_tables(vocabulary_texts(tokenizer)).items():
            setattr(config, name, ids)
    if not config.special_token_ids:
        config.special_token_ids = unwritten_special_ids(tokenizer)
