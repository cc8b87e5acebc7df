"""A real serving process (``python -m workers.serving``) on the test database, with a tiny build
of the style model as its base model; the web side in the test process talks to it over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from tests.support.serving import serving_process
from tests.support.style_models import build_tiny_style_model

KEY = "test-serving-key"


@dataclass(frozen=True)
class Serving:
    url: str
    var: Path
    adapter_root: Path


@pytest.fixture(scope="session")
def style_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    var = tmp_path_factory.mktemp("generation-var")
    build_tiny_style_model(var)
    return var


@pytest.fixture(scope="module")
def serving(django_db_setup, django_db_blocker, style_var: Path):
    """The serving process for this module's tests (its database is the test database)."""
    from django.conf import settings

    with django_db_blocker.unblock(), serving_process(
        style_var, KEY, settings.SECRET_KEY, ATTUNE_SERVING_MAX_WAIT_MS="30",
        ATTUNE_SERVING_DEFAULT_MAX_TOKENS="24",
    ) as (url, adapter_root):  # fmt: skip
        yield Serving(url, style_var, adapter_root)


@pytest.fixture
def generation(serving: Serving, settings):
    """The web side pointed at the serving process."""
    settings.ATTUNE_SERVING_URL = serving.url
    settings.ATTUNE_SERVING_KEY = KEY
    settings.ATTUNE_ADAPTER_ROOT = serving.adapter_root
    return serving


def save_adapter(var: Path, adapter_root: Path, name: str, seed: int) -> tuple[str, str]:
    """A random LoRA on the tiny style model in ``var`` (non-zero, and scaled up so that it
    visibly changes the tiny model's text), saved as PEFT safetensors in the artifact store
    (written in ``adapter_root`` first); returns (its ref, fingerprint)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from core.config import artifact_store
    from workers.adapters.storage import AdapterStore, base_fingerprint
    from workers.modeling.loader import load_base_model
    from workers.modeling.style_lm import style_lm_dir

    model, _ = load_base_model(str(style_lm_dir(var)), device="cpu")
    fingerprint = base_fingerprint(model)
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=64, target_modules="all-linear", init_lora_weights=False)
    peft = get_peft_model(model, config)
    store = AdapterStore(artifact_store(), adapter_root)
    return store.save(peft, "default", fingerprint, name=name), fingerprint


@pytest.fixture
def openai_client(live_server, generation, user) -> Iterator[openai.OpenAI]:
    """The official ``openai`` client for ``user`` (a personal token), on the live server's
    ``/v1``; closing it ends the server's request threads and their DB sessions."""
    from apps.accounts.services import issue_personal_token

    key = issue_personal_token(user, "openai").key
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0) as client:
        yield client
