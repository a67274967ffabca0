"""The layering that docs/architecture.md describes is what the imports do.

Every import in the package, at module level or inside a function, is an edge. There must
be no circle, every edge must point down the layers below, the readers of data must ask
the provider (never the store or the reader), and the page of the architecture must name
every module there is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kboard"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Lower numbers sit lower. An import may point to its own layer or any layer below it.
LAYERS: dict[str, int] = {
    "kboard.version": 0,
    "kboard.tfevents": 0,
    "kboard.tfevents.plugins": 0,
    "kboard.tfevents.records": 1,
    "kboard.tfevents.events": 1,
    "kboard.tfevents.protos": 1,
    "kboard.tfevents.fastpath": 2,
    "kboard.jsonsafe": 2,
    "kboard.downsample": 2,
    "kboard.groups": 2,
    "kboard.histograms": 2,
    "kboard.text": 2,
    "kboard.model": 2,
    "kboard.storage": 1,
    "kboard.graph": 2,
    "kboard.hparams": 2,
    "kboard.store": 3,
    "kboard.progress": 3,
    "kboard.cache": 4,
    "kboard.ingest": 5,
    "kboard.provider": 6,
    "kboard.export": 7,
    "kboard.read": 8,
    "kboard.writer": 3,
    "kboard.summary": 4,
    "kboard.keras": 4,
    "kboard.server": 9,
    "kboard.server.responses": 9,
    "kboard.server.live": 9,
    "kboard.server.auth": 9,
    "kboard.server.streams": 9,
    "kboard.server.memory": 9,
    "kboard.server.context": 10,
    "kboard.server.api": 11,
    "kboard.server.compat": 11,
    "kboard.server.hparams": 11,
    "kboard.server.views": 11,
    "kboard.server.app": 12,
    "kboard.server.serve": 13,
    "kboard.demo": 14,
    "kboard.cli": 15,
    "kboard.__main__": 16,
    "kboard": 17,  # the package __init__: the public names, on top of everything
}
# Who answers questions about the logs for these is the provider, not the store or reader.
PROVIDER_CLIENTS = (
    "kboard.server.api",
    "kboard.server.compat",
    "kboard.server.hparams",
    "kboard.server.views",
    "kboard.export",
    "kboard.read",
    "kboard.cli",
)
BELOW_PROVIDER = ("kboard.store", "kboard.ingest", "kboard.cache")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The kboard modules ``name`` imports anywhere in its file (functions too)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            # ``from a import b`` imports the submodule a.b when there is one, else a.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("kboard") and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    names = set(modules)
    return {name: imports_of(name, path, names) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import circle as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_walker_sees_function_level_imports_and_circles() -> None:
    # The checks below are only as good as the walker: prove it on a known circle.
    graph = import_graph()
    assert "kboard.server.serve" in graph["kboard.cli"]  # imported inside a function
    assert "kboard.tfevents.protos" in graph["kboard.keras"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_every_module_has_a_layer() -> None:
    assert sorted(set(all_modules()) - set(LAYERS)) == []
    assert sorted(set(LAYERS) - set(all_modules())) == []


def test_imports_only_point_down() -> None:
    upward = [
        f"{src} (layer {LAYERS[src]}) imports {dst} (layer {LAYERS[dst]})"
        for src, targets in import_graph().items()
        for dst in sorted(targets)
        if LAYERS[dst] > LAYERS[src]
    ]
    assert upward == []


@pytest.mark.parametrize("client", PROVIDER_CLIENTS)
def test_readers_of_data_ask_only_the_provider(client: str) -> None:
    graph = import_graph()
    assert "kboard.provider" in graph[client] or client == "kboard.server.views"
    assert sorted(graph[client] & set(BELOW_PROVIDER)) == [], f"{client} reaches below the provider"


def test_nothing_below_the_web_layer_knows_http() -> None:
    for name, path in all_modules().items():
        if name.startswith("kboard.server") or name in ("kboard.cli", "kboard.demo"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(from|import) (flask|werkzeug|waitress)\b", text, re.M), name


def test_the_writer_side_never_imports_the_reader() -> None:
    graph = import_graph()
    for writer in ("kboard.writer", "kboard.summary", "kboard.keras"):
        reached = graph[writer]
        assert not reached & {"kboard.store", "kboard.ingest", "kboard.provider"}, writer


def test_architecture_page_names_every_module() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    files = [p for p in PACKAGE.rglob("*.py")]
    files += list((PACKAGE / "static" / "js").glob("*.js"))
    files += list((PACKAGE / "templates").glob("*.html"))
    missing = [
        str(p.relative_to(ROOT))
        for p in sorted(files)
        if str(p.relative_to(ROOT)) not in text
        and str(p.relative_to(PACKAGE)) not in text  # templates/index.html, static/js/...
    ]
    assert missing == [], f"docs/architecture.md does not name: {missing}"
    named = set(re.findall(r"`(kboard/[\w/]+\.(?:py|js))`", text))
    gone = sorted(n for n in named if not (ROOT / n).exists())
    assert gone == [], f"docs/architecture.md names modules that do not exist: {gone}"
