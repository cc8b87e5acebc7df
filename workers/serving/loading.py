"""The serving process while its model is being prepared, and the progress it reports.

The HTTP server starts at once with a :class:`Preparing` service in place of the real one, so
``/healthz`` answers ``loading`` with progress and a generation answers 503 saying the model is
being prepared (the web moves it to a replica that is ready, or tells the person how far it is).
The real service replaces it when the model is loaded; a failure to load stays visible as
``error`` with its reason. Torch-free.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import unavailable
from core.serving import describe_progress

Progress = Callable[[], dict[str, Any]]


def file_progress(path: Path, stage: str) -> Progress:
    """Progress read from a JSON file a builder writes (``{"step", "steps", "stage"}``), else
    just ``stage``."""

    def read() -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {"stage": stage}
        if not isinstance(data, dict):
            return {"stage": stage}
        step, steps = data.get("step"), data.get("steps")
        found: dict[str, Any] = {"stage": str(data.get("stage") or stage)}
        if isinstance(step, int) and isinstance(steps, int) and steps > 0:
            found |= {"step": step, "steps": steps, "fraction": round(step / steps, 3)}
        return found

    return read


class Preparing:
    """Stands in for the serving service until the model is ready (or failed to load)."""

    def __init__(self, backend: str, base_model: str, progress: Progress) -> None:
        self.backend = backend
        self.base_model = base_model
        self.progress = progress
        self.since = time.monotonic()
        self.error = ""

    def health(self) -> dict[str, Any]:
        state = "error" if self.error else "loading"
        data: dict[str, Any] = {"status": state, "backend": self.backend}
        data["base_model"] = self.base_model
        if self.error:
            data["error"] = self.error
        else:
            data["loading"] = {
                **self.progress(),
                "seconds": round(time.monotonic() - self.since, 1),
            }
        return data

    def message(self) -> str:
        if self.error:
            return f"The generation service could not load its model: {self.error}"
        return (
            f"The model is being prepared: {describe_progress(self.progress())}. "
            "Generation starts as soon as it is ready; please try again in a moment."
        )

    def prepare(self, request: object) -> Any:
        raise unavailable(self.message(), code="model_loading")
