"""JSON responses that are always valid JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Response, request

from kboard.provider import Blob


def json_response(obj: Any, status: int = 200) -> Response:
    """Serialise ``obj`` (already cleansed where it holds floats) as strict JSON."""
    body = json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status=status, mimetype="application/json")


def blob_response(blob: Blob) -> Response:
    """Serve stored bytes, revalidated by their hash on every use (304 when unchanged).

    An image at the same URL changes when its run is read again, so no browser may reuse it
    without asking; asking costs a 304 and no bytes.
    """
    response = Response(blob.data, mimetype=blob.content_type)
    response.set_etag(blob.etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)


def revalidated_json(etag: str, build: Callable[[], Any]) -> Response:
    """JSON under ``etag``: a 304 without building it when the client holds that version."""
    held = etag in request.if_none_match
    response = Response(status=304) if held else json_response(build())
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def json_error(message: str, status: int) -> Response:
    """An error as ``{"error": message}``."""
    return json_response({"error": message}, status)
