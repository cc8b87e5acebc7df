"""A real serving process (``python -m workers.serving``) on the test database, with a tiny build
of the style model as its base model; the web side in the test process talks to it over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import (
    ROOT,
    database_url_for_tests,
    project_env,
    wait_for_other_sessions_to_close,
)
from tests.support.style_models import build_tiny_style_model

KEY = "test-serving-key"


@dataclass(frozen=True)
class Serving:
    url: str
    var: Path
    adapter_root: Path
    process: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def style_var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    var = tmp_path_factory.mktemp("generation-var")
    build_tiny_style_model(var)
    return var


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the serving process exited with {process.returncode}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url + "/healthz", timeout=2) as answer,
        ):
            if json.loads(answer.read())["status"] == "ok":
                return
        time.sleep(0.2)
    raise RuntimeError("the serving process did not come up")


@pytest.fixture(scope="module")
def serving(django_db_setup, django_db_blocker, style_var: Path):
    """The serving process for this module's tests (its database is the test database)."""
    from django.conf import settings

    with django_db_blocker.unblock():
        database_url = database_url_for_tests()
    port = free_port()
    adapter_root = style_var / "adapters"
    adapter_root.mkdir(exist_ok=True)
    env = project_env(
        DATABASE_URL=database_url,
        ATTUNE_VAR_DIR=str(style_var),
        ATTUNE_ADAPTER_ROOT=str(adapter_root),
        ATTUNE_SERVING_KEY=KEY,
        ATTUNE_SERVING_PORT=str(port),
        ATTUNE_SERVING_MAX_WAIT_MS="30",
        ATTUNE_SERVING_DEFAULT_MAX_TOKENS="24",
        ATTUNE_SERVING_THREADS="1",
        DJANGO_SECRET_KEY=settings.SECRET_KEY,
        ATTUNE_LOG_LEVEL="WARNING",
    )
    env.pop("ATTUNE_BASE_MODEL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.serving"], cwd=ROOT, env=env, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield Serving(url, style_var, adapter_root, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        with django_db_blocker.unblock():
            wait_for_other_sessions_to_close()  # so the test database can be dropped


@pytest.fixture
def generation(serving: Serving, settings):
    """The web side pointed at the serving process."""
    settings.ATTUNE_SERVING_URL = serving.url
    settings.ATTUNE_SERVING_KEY = KEY
    settings.ATTUNE_ADAPTER_ROOT = serving.adapter_root
    return serving


def save_adapter(var: Path, adapter_root: Path, name: str, seed: int) -> tuple[str, str]:
    """A random (non-zero) LoRA on the tiny style model in ``var``, saved as PEFT safetensors in
    the adapter store at ``adapter_root``; returns (path relative to the store, fingerprint)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from workers.adapters.storage import AdapterStore, base_fingerprint
    from workers.modeling.loader import load_base_model
    from workers.modeling.style_lm import style_lm_dir

    model, _ = load_base_model(str(style_lm_dir(var)), device="cpu")
    fingerprint = base_fingerprint(model)
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    peft = get_peft_model(model, config)
    store = AdapterStore(adapter_root)
    folder = store.save(peft, "default", store.folder("test", name), fingerprint)
    return str(folder.relative_to(store.root)), fingerprint
