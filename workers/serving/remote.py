"""The remote backend: a remote OpenAI-compatible server with LoRA support (e.g. vLLM) generates;
Attune composes each user's weights and hands them over as a LoRA adapter.

When a user's adapter version or η change (a new weights key), the composed adapter (user LoRA +
Σ η·φ, exact ``cat`` composition, ``workers.serving.lora``) is written as a PEFT folder under the
adapter store (``serving/remote/<name>``) and loaded with ``POST {url}/load_lora_adapter``
(vLLM: start it with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; the
composed rank must not exceed its ``--max-lora-rank``); the user's previous one is unloaded. The
request then names that adapter as its ``model``. The persona and the CIPHER preference go into
the system message; the remote server applies its chat template.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import GenerationError, unavailable
from core.serving import GenerateRequest
from workers.adapters.storage import AdapterStore
from workers.collab.reranking import personalized_scores
from workers.serving.lora import write_peft
from workers.serving.prompts import UserContext, system_prompt
from workers.serving.service import Prepared, ServingService
from workers.serving.weights import Applied, WeightsProvider

log = logging.getLogger(__name__)


class RemoteBackend:
    """HTTP to the remote server (standard library)."""

    def __init__(self, url: str, model: str, api_key: str = "", timeout: float = 300.0) -> None:
        if not url:
            raise ValueError("set ATTUNE_SERVING_REMOTE_URL (e.g. http://127.0.0.1:8001/v1)")
        self.url = url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.loaded: dict[int, str] = {}  # user id -> the adapter name loaded for them
        self._lock = threading.Lock()

    def _request(self, path: str, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            try:
                data = json.loads(err.read() or b"{}")
            except ValueError:
                data = {}
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                raise GenerationError.from_dict(data, err.code) from err
            message = data.get("message") if isinstance(data, dict) else None
            raise GenerationError(
                f"The remote model server refused the request: {message or err.reason}",
                status=err.code if 400 <= err.code < 500 else 502,
                type="invalid_request_error" if err.code < 500 else "server_error",
            ) from err
        except OSError as err:
            raise unavailable(
                f"The remote model server at {self.url} is not reachable: {err}"
            ) from err

    def ensure_adapter(self, user_id: int, name: str, folder: str) -> None:
        """Load adapter ``name`` from ``folder`` unless it is this user's loaded one; unload the
        user's previous adapter."""
        with self._lock:
            previous = self.loaded.get(user_id)
            if previous == name:
                return
            self._request("/load_lora_adapter", {"lora_name": name, "lora_path": folder}).close()
            self.loaded[user_id] = name
        if previous is not None:
            try:
                self._request("/unload_lora_adapter", {"lora_name": previous}).close()
            except GenerationError as err:
                log.warning("could not unload %s: %s", previous, err.message)

    def open_chat(self, body: dict[str, Any]) -> Any:
        return self._request("/chat/completions", body)


def sse_events(response: Any) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, up to ``data: [DONE]``."""
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


class RemoteService(ServingService):
    backend = "remote"

    def __init__(self, remote: RemoteBackend, weights: WeightsProvider, store: AdapterStore):
        self.remote = remote
        self.weights = weights
        self.store = store
        self.base_model = remote.model
        self.scorer = personalized_scores
        self._composed: dict[str, str] = {}  # remote adapter name -> its ref in the store

    def adapter_model(self, user_id: int, key: str, applied: Applied) -> str:
        """The remote model name for these weights: the base model, or the composed adapter."""
        lora = applied.composed()
        if lora is None:
            return self.remote.model
        name = f"attune-u{user_id}-{key}"
        if (ref := self._composed.get(name)) is None:
            self.store.scratch.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=self.store.scratch, prefix="composed-") as tmp:
                folder = write_peft(
                    lora, Path(tmp) / name, "remote", self.remote.model, user=user_id
                )
                ref = self._composed[name] = self.store.put(folder)
        # vLLM reads a local path: this node's cached copy (ATTUNE_ARTIFACT_CACHE_DIR)
        self.remote.ensure_adapter(user_id, name, str(self.store.folder(ref)))
        return name

    def prepare(self, request: GenerateRequest) -> Prepared:
        user, messages, plan = self.load(request)
        params = request.params
        applied = self.weights.weights(plan)
        model = self.adapter_model(user.pk, plan.weights_key(), applied)
        ours = system_prompt(UserContext(plan.persona, plan.preference))
        sent = [dict(m) for m in messages]
        if ours:
            sent.insert(0, {"role": "system", "content": ours})
        body: dict[str, Any] = {
            "model": model, "messages": sent, "n": params.n,
            "stream": True, "stream_options": {"include_usage": True},
        }  # fmt: skip
        for name in ("temperature", "top_p"):  # none named: the remote's own default for its model
            if (value := getattr(params, name)) is not None:
                body[name] = value
        for name in ("max_tokens", "stop", "seed"):
            if value := getattr(params, name):
                body[name] = list(value) if name == "stop" else value
        response = self.remote.open_chat(body)  # a refusal answers with the remote's status
        prepared = Prepared(
            f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), user, messages, params,
            request.stream, plan, applied, json.dumps(sent), [], 0,
        )  # fmt: skip
        prepared.response = response  # type: ignore[attr-defined]
        return prepared

    def run(self, p: Prepared, write: Any) -> None:
        write(self.start_event(p))
        n = p.params.n
        texts, reasons = [""] * n, ["stop"] * n
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        response = p.response  # type: ignore[attr-defined]
        try:
            for chunk in sse_events(response):
                for choice in chunk.get("choices") or []:
                    i = int(choice.get("index", 0))
                    delta = (choice.get("delta") or {}).get("content") or ""
                    if delta and 0 <= i < n:
                        texts[i] += delta
                        if p.stream:
                            write({"type": "delta", "index": i, "text": delta})
                    if choice.get("finish_reason") and 0 <= i < n:
                        reasons[i] = choice["finish_reason"]
                if chunk.get("usage"):
                    usage.update({k: chunk["usage"].get(k, 0) for k in usage})
        finally:
            response.close()
        self.finish(p, texts, reasons, usage["prompt_tokens"], usage["completion_tokens"], write)
