"""``python -m workers.serving``: the serving process (``./attune run`` starts it).

It sets up Django (the user's adapter, η, memory, persona are read and Interactions written
through the ORM), listens on ``ATTUNE_SERVING_HOST:ATTUNE_SERVING_PORT`` (127.0.0.1:8300) for the
web process at once, and meanwhile loads the base model (``ATTUNE_BASE_MODEL``, building the
built-in style model on first use; the local backend) or connects to a remote OpenAI-compatible
server (``ATTUNE_SERVING_BACKEND=remote``); until then ``/healthz`` says ``loading`` with the
progress, and generations answer 503 saying so.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from typing import Any

log = logging.getLogger("workers.serving")


def build_local(settings: Any) -> Any:
    import workers.modeling  # noqa: F401  (OMP_WAIT_POLICY before torch)
    from core import config
    from workers.adapters.storage import AdapterStore, base_fingerprint
    from workers.modeling.loader import load_base_model
    from workers.serving.engine import Engine, choose_threads
    from workers.serving.scheduler import Scheduler
    from workers.serving.service import ServingService
    from workers.serving.weights import WeightsProvider

    model, tokenizer = load_base_model()
    choose_threads(model, settings.ATTUNE_SERVING_THREADS)
    engine = Engine(model, tokenizer)
    weights = WeightsProvider(
        AdapterStore(config.artifact_store(), settings.ATTUNE_ADAPTER_ROOT),
        base_fingerprint(model),
        config.base_model_name(),
        settings.ATTUNE_SERVING_CACHE_BYTES,
        engine.device,
        engine.dtype,
        engine.runtime.linears,
    )
    scheduler = Scheduler(
        engine, settings.ATTUNE_SERVING_MAX_BATCH, settings.ATTUNE_SERVING_MAX_WAIT_MS
    )
    return ServingService(
        engine, scheduler, weights, config.base_model_name(),
        settings.ATTUNE_SERVING_DEFAULT_MAX_TOKENS, settings.ATTUNE_SERVING_TIMEOUT,
    )  # fmt: skip


def build_remote(settings: Any) -> Any:
    from core import config
    from workers.adapters.storage import AdapterStore
    from workers.serving.remote import RemoteBackend, RemoteService
    from workers.serving.weights import WeightsProvider

    base_model = settings.ATTUNE_SERVING_REMOTE_MODEL or config.base_model_name()
    store = AdapterStore(config.artifact_store(), settings.ATTUNE_ADAPTER_ROOT)
    weights = WeightsProvider(
        store, None, config.base_model_name(), settings.ATTUNE_SERVING_CACHE_BYTES
    )
    backend = RemoteBackend(
        settings.ATTUNE_SERVING_REMOTE_URL, base_model, settings.ATTUNE_SERVING_REMOTE_API_KEY,
        settings.ATTUNE_SERVING_TIMEOUT,
    )  # fmt: skip
    return RemoteService(
        backend, weights, AdapterStore(config.artifact_store(), settings.ATTUNE_ADAPTER_ROOT)
    )


def preparing(settings: Any) -> Any:
    """The stand-in service until the model is ready, with the progress to report."""
    from core import config
    from workers.serving.loading import Preparing, file_progress

    backend = settings.ATTUNE_SERVING_BACKEND
    name = config.base_model_name()
    if backend == "remote":
        return Preparing(backend, settings.ATTUNE_SERVING_REMOTE_MODEL or name, lambda: {
            "stage": "connecting to the remote model server"})  # fmt: skip
    if name == config.STYLE_LM_NAME:
        from workers.modeling.style_lm import progress_file

        stage = "loading the built-in style model"
        return Preparing(backend, name, file_progress(progress_file(), stage))
    return Preparing(backend, name, lambda: {"stage": f"loading {name}"})


def load_in_background(server: Any, settings: Any) -> threading.Thread:
    """Build the real service in a thread and put it in place of the stand-in when it is ready;
    a failure stays on the stand-in (``/healthz`` says ``error`` and why)."""
    stand_in = server.service

    def load() -> None:
        try:
            remote = settings.ATTUNE_SERVING_BACKEND == "remote"
            service = build_remote(settings) if remote else build_local(settings)
        except Exception as err:
            log.exception("the serving process could not load its model")
            stand_in.error = f"{type(err).__name__}: {err}"
            print(f"attune serving: could not load the model: {stand_in.error}", flush=True)
            return
        server.service = service
        gc.collect()
        gc.freeze()  # the model and Django stay alive: keep them out of every collection's scan
        print(f"attune serving: {service.backend} backend, model {service.base_model}, ready",
              flush=True)  # fmt: skip

    thread = threading.Thread(target=load, name="load-model", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "attune.settings")
    import django

    django.setup()
    from django.conf import settings

    from core.serving import serving_key
    from workers.serving.server import ServingHTTPServer

    parser = argparse.ArgumentParser(prog="python -m workers.serving", description=__doc__)
    parser.add_argument("--host", default=settings.ATTUNE_SERVING_HOST)
    parser.add_argument("--port", type=int, default=settings.ATTUNE_SERVING_PORT)
    args = parser.parse_args(argv)

    backend = settings.ATTUNE_SERVING_BACKEND
    if backend not in {"local", "remote"}:
        print(f"attune serving: ATTUNE_SERVING_BACKEND must be local or remote, not {backend!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    key = serving_key(settings.SECRET_KEY, settings.ATTUNE_SERVING_KEY)
    server = ServingHTTPServer((args.host, args.port), preparing(settings), key)
    load_in_background(server, settings)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"attune serving: listening on http://{args.host}:{server.server_address[1]} "
        "(the model loads in the background; /healthz shows how far)",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        scheduler = getattr(server.service, "scheduler", None)
        if scheduler is not None:
            scheduler.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
