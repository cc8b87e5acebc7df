"""Streamed JSON Lines answers: rows are encoded as they are read, never held in memory at once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from rest_framework.renderers import BaseRenderer

JSONL_MEDIA_TYPE = "application/x-ndjson"
CHUNK_BYTES = 64 * 1024


class JSONLinesRenderer(BaseRenderer):
    """Lets clients ask for ``application/x-ndjson``; errors then come as one JSON line."""

    media_type = JSONL_MEDIA_TYPE
    format = "jsonl"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return (json.dumps(data, cls=DjangoJSONEncoder) + "\n").encode()


def gathered(pieces: Iterable[bytes], size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """``pieces`` joined into chunks of about ``size`` bytes (fewer, larger writes)."""
    buffer: list[bytes] = []
    held = 0
    for piece in pieces:
        buffer.append(piece)
        held += len(piece)
        if held >= size:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


def _chunks(rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    encoder = DjangoJSONEncoder(ensure_ascii=False)
    return gathered((encoder.encode(row) + "\n").encode() for row in rows)


def jsonl_attachment(chunks: Iterable[bytes], filename: str) -> StreamingHttpResponse:
    """A streamed JSON Lines download of already encoded ``chunks``."""
    response = StreamingHttpResponse(chunks, content_type=JSONL_MEDIA_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def jsonl_response(rows: Iterable[dict[str, Any]], filename: str) -> StreamingHttpResponse:
    """A streamed JSON Lines download of ``rows`` (one JSON object per line, UTF-8)."""
    return jsonl_attachment(_chunks(rows), filename)
