"""``python -m workers.serving``: the serving process (``./attune run`` starts it).

It sets up Django (the user's adapter, η, memory, persona are read and Interactions written
through the ORM), loads the base model once (``ATTUNE_BASE_MODEL``; the local backend) or
connects to a remote OpenAI-compatible server (``ATTUNE_SERVING_BACKEND=remote``), and listens on
``ATTUNE_SERVING_HOST:ATTUNE_SERVING_PORT`` (127.0.0.1:8300) for the web process.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
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
    service = build_remote(settings) if backend == "remote" else build_local(settings)
    key = serving_key(settings.SECRET_KEY, settings.ATTUNE_SERVING_KEY)
    server = ServingHTTPServer((args.host, args.port), service, key)
    gc.collect()
    gc.freeze()  # the model and Django stay alive: keep them out of every collection's scan

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"attune serving: {service.backend} backend, model {service.base_model}, "
        f"listening on http://{args.host}:{server.server_address[1]}",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        scheduler = getattr(service, "scheduler", None)
        if scheduler is not None:
            scheduler.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
