"""JSON responses that are always valid JSON."""

from __future__ import annotations

import json
from typing import Any

from flask import Response


def json_response(obj: Any, status: int = 200) -> Response:
    """Serialise ``obj`` (already cleansed where it holds floats) as strict JSON."""
    body = json.dumps(obj, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status=status, mimetype="application/json")


def json_error(message: str, status: int) -> Response:
    """An error as ``{"error": message}``."""
    return json_response({"error": message}, status)
