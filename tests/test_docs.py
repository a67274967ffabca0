"""docs/http_api.md documents every route the app serves, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "http_api.md"


def documented_routes() -> set[str]:
    paths = re.findall(r"^### `GET ([^`?\[ ]+)", DOC.read_text(encoding="utf-8"), re.M)
    return set(paths)


def served_routes(app) -> set[str]:
    return {
        re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set())
    }


def test_every_route_is_documented_and_every_documented_route_exists(client) -> None:
    served = served_routes(client.application)
    documented = documented_routes()
    assert served - documented == set(), "routes missing from docs/http_api.md"
    assert documented - served == set(), "docs/http_api.md names routes that do not exist"
