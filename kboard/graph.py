"""Graphs for the MODEL tab: a Keras model's layers and a TensorFlow ``GraphDef``'s ops, as JSON.

Two shapes, both plain data for the page, which lays them out:

- a **layer graph** (:func:`keras_graph`) from a Keras model config (Keras 3 and Keras 2
  ``inbound_nodes``) or kboard's model summary: ``nodes`` (``id``, ``name``, ``class``,
  ``parent`` (the id of the nested model holding it, or None), ``output_shape``, ``params``,
  ``calls`` (how many times a shared layer is used), ``config``) and ``edges`` (``source``,
  ``target``, ``shape``). A nested model is a node with children; edges to it meet its box.
- an **op graph** (:func:`op_graph`) from a serialized ``GraphDef``, in a compact column form
  (``names``, ``op``/``device`` indexes into ``ops``/``devices``, ``shapes``, ``attrs`` and a
  flat ``edges`` list of ``source, target, control`` triples); the page groups the ops by
  name scope, as TensorBoard does, so a big graph opens collapsed.

Both raise ``ValueError`` with a message for the page when the input cannot be drawn. The
last few results are kept (a page refetches a graph after every live update), so callers must
not change what they get.
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

from google.protobuf.message import DecodeError
from tensorboard.compat.proto import graph_pb2, types_pb2

from kboard.model import dicts, load_summary
from kboard.tfevents.plugins import MODEL_SUMMARY_FORMAT

MAX_GRAPH_BYTES = 64 * 1024 * 1024
MAX_OPS = 50_000
MAX_LAYERS = 20_000
MAX_ATTR_CHARS = 240  # per attribute value shown on click
MAX_DEPTH = 32  # nesting of models within models


@functools.lru_cache(maxsize=16)
def graph_digest(stored: str | bytes) -> str:
    """A short hash of a stored graph, to tell the page it has not changed (kept: asked often)."""
    data = stored.encode("utf-8", "surrogatepass") if isinstance(stored, str) else stored
    return hashlib.blake2b(data, digest_size=12).hexdigest()


# -- Keras layer graphs ---------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def keras_graph(text: str) -> dict[str, Any]:
    """Parse a stored model summary (a Keras config or kboard summary, JSON) into a layer graph."""
    doc = load_summary(text)
    builder = _LayerGraph()
    if doc.get("format") == MODEL_SUMMARY_FORMAT:
        config = doc.get("keras_config")
        if isinstance(config, dict):
            builder.model(config, None, 0)
            builder.annotate(doc.get("layers"), None)
        else:
            builder.summary_layers(doc.get("layers"), None, str(doc.get("class", "")), 0)
    else:
        builder.model(doc, None, 0)
    return {"kind": "layers", "nodes": builder.nodes, "edges": builder.edges, "note": builder.note}


class _LayerGraph:
    """Builds the nodes and edges of a (possibly nested) Keras model."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.note = ""
        self._by_name: dict[tuple[str | None, str], dict[str, Any]] = {}

    def _add(self, entry: dict[str, Any], parent: str | None) -> dict[str, Any]:
        if len(self.nodes) >= MAX_LAYERS:
            raise ValueError(f"the model has more than {MAX_LAYERS:,} layers to draw")
        config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        name = str(config.get("name") or entry.get("name") or f"layer_{len(self.nodes)}")
        node = {
            "id": f"n{len(self.nodes)}",
            "name": name,
            "class": str(entry.get("class_name") or entry.get("class") or ""),
            "parent": parent,
            "output_shape": None,
            "params": None,
            "trainable": bool(config.get("trainable", True)),
            "calls": 0,
            "config": _config_text(config),
        }
        self.nodes.append(node)
        self._by_name.setdefault((parent, name), node)
        return node

    def model(self, doc: dict[str, Any], parent: str | None, depth: int) -> dict[str, Any] | None:
        """Add a model's layers under ``parent`` and connect them; return the model's node."""
        config = doc.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            return None
        layers = dicts(config["layers"])
        nodes = []
        for entry in layers:
            node = self._add(entry, parent)
            nodes.append(node)
            if depth + 1 < MAX_DEPTH:
                self.model(entry, node["id"], depth + 1)
            if node["class"] == "InputLayer":
                cfg = entry.get("config") or {}
                shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
                node["output_shape"] = _shape_text(shape)
        for ref in _refs(config.get("output_layers")):
            node = self._by_name.get((parent, ref))
            if node is not None:
                node["output"] = True
        if any("inbound_nodes" in e for e in layers) or "input_layers" in config:
            for entry, node in zip(layers, nodes, strict=True):
                for call in _calls(entry.get("inbound_nodes")):
                    node["calls"] += 1
                    for source_name, node_index, shape in call:
                        source = self._by_name.get((parent, source_name))
                        if source is None:
                            continue
                        self.edges.append(
                            {
                                "source": source["id"],
                                "target": node["id"],
                                "shape": _shape_text(shape),
                                "call": node_index,
                            }
                        )
                        if shape is not None and source["output_shape"] is None:
                            source["output_shape"] = _shape_text(shape)
        else:  # Sequential: each layer feeds the next
            self._chain(nodes)
        return None

    def _chain(self, nodes: list[dict[str, Any]]) -> None:
        for before, after in zip(nodes, nodes[1:]):
            self.edges.append(
                {"source": before["id"], "target": after["id"], "shape": None, "call": 0}
            )
            after["calls"] = 1

    def summary_layers(self, layers: Any, parent: str | None, cls: str, depth: int) -> None:
        """Add the layers of a kboard summary that has no config: a chain for Sequential."""
        nodes = []
        for entry in dicts(layers):
            node = self._add(entry, parent)
            self._fill(node, entry)
            nodes.append(node)
            if depth + 1 < MAX_DEPTH:
                self.summary_layers(entry.get("layers"), node["id"], node["class"], depth + 1)
        if cls == "Sequential":
            self._chain(nodes)
        elif len(nodes) > 1:
            self.note = "This summary does not record how the layers connect."

    def annotate(self, layers: Any, parent: str | None) -> None:
        """Fill output shapes and parameter counts from a kboard summary's layers."""
        for entry in dicts(layers):
            node = self._by_name.get((parent, str(entry.get("name", ""))))
            if node is None:
                continue
            self._fill(node, entry)
            self.annotate(entry.get("layers"), node["id"])

    @staticmethod
    def _fill(node: dict[str, Any], entry: dict[str, Any]) -> None:
        shape = entry.get("output_shape")
        if isinstance(shape, str) and shape not in ("", "?"):
            node["output_shape"] = shape
        params = entry.get("params")
        if isinstance(params, int) and not isinstance(params, bool):
            node["params"] = params
        if not node["config"] and isinstance(entry.get("config"), dict):
            node["config"] = _config_text(entry["config"])


def _calls(inbound: Any) -> list[list[tuple[str, int, Any]]]:
    """The inputs of each call of a layer, ``[(layer, node index, shape)]``, in either format."""
    calls = []
    for call in inbound if isinstance(inbound, list) else []:
        found: list[tuple[str, int, Any]] = []
        if isinstance(call, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            _keras3_tensors(call, found, 0)
        elif isinstance(call, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            for ref in call:
                if isinstance(ref, list) and len(ref) >= 3 and isinstance(ref[0], str):
                    found.append((ref[0], _int(ref[1]), None))
        calls.append(found)
    return calls


def _refs(value: Any) -> list[str]:
    """The layer names of ``input_layers``/``output_layers``: ``[name, 0, 0]`` or a list of them."""
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [value[0]]
    return (
        [v[0] for v in value if isinstance(v, list) and v and isinstance(v[0], str)]
        if isinstance(value, list)
        else []
    )


def _keras3_tensors(value: Any, found: list[tuple[str, int, Any]], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        config = value.get("config")
        if value.get("class_name") == "__keras_tensor__" and isinstance(config, dict):
            history = config.get("keras_history")
            if isinstance(history, list) and history and isinstance(history[0], str):
                found.append(
                    (history[0], _int(history[1] if len(history) > 1 else 0), config.get("shape"))
                )
            return
        for item in value.values():
            _keras3_tensors(item, found, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _keras3_tensors(item, found, depth + 1)


def _config_text(config: dict[str, Any]) -> str:
    """A layer's own settings as indented JSON, without nested layers (they are nodes)."""
    shown = {k: v for k, v in config.items() if k != "layers"}
    try:
        return json.dumps(shown, indent=1, sort_keys=True, default=str)[:20_000]
    except (TypeError, ValueError, RecursionError):
        return ""


def _shape_text(shape: Any) -> str | None:
    if isinstance(shape, str):
        return shape
    if isinstance(shape, list | tuple) and all(d is None or isinstance(d, int) for d in shape):
        inner = ", ".join("None" if d is None else str(d) for d in shape)
        return f"({inner}{',' if len(shape) == 1 else ''})"
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- TensorFlow op graphs -------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def op_graph(data: bytes) -> dict[str, Any]:
    """Parse a serialized ``GraphDef`` into the compact op-graph form (see the module doc)."""
    if len(data) > MAX_GRAPH_BYTES:
        raise ValueError(
            f"this graph is {len(data) / 2**20:,.0f} MiB; kboard draws graphs up to "
            f"{MAX_GRAPH_BYTES // 2**20} MiB"
        )
    try:
        graph = graph_pb2.GraphDef.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"this graph is not a readable GraphDef ({exc})") from None
    count = len(graph.node)
    if count > MAX_OPS:
        raise ValueError(f"this graph has {count:,} ops; kboard draws graphs up to {MAX_OPS:,}")
    index = {node.name: i for i, node in enumerate(graph.node)}
    ops: dict[str, int] = {}
    devices: dict[str, int] = {}
    names, op_ids, device_ids, shapes, attrs = [], [], [], [], []
    edges: list[int] = []
    dangling = 0
    for i, node in enumerate(graph.node):
        names.append(node.name)
        op_ids.append(ops.setdefault(node.op, len(ops)))
        device_ids.append(devices.setdefault(node.device, len(devices)))
        shapes.append(_output_shapes(node))
        attrs.append(_attrs_text(node))
        for name in node.input:
            control = name.startswith("^")
            source = index.get(name.lstrip("^").split(":", 1)[0])
            if source is None:
                dangling += 1
                continue
            edges += (source, i, int(control))
    functions = len(graph.library.function)
    notes = []
    if dangling:
        notes.append(f"{dangling:,} inputs name ops that are not in the graph")
    if functions:
        notes.append(f"{functions:,} library functions are not drawn")
    return {
        "kind": "ops",
        "count": count,
        "names": names,
        "ops": list(ops),
        "op": op_ids,
        "devices": list(devices),
        "device": device_ids,
        "shapes": shapes,
        "attrs": attrs,
        "edges": edges,
        "note": "; ".join(notes),
    }


def _output_shapes(node: Any) -> str | None:
    if "_output_shapes" not in node.attr:
        return None
    return ", ".join(_tensor_shape(s) for s in node.attr["_output_shapes"].list.shape) or None


def _tensor_shape(shape: Any) -> str:
    if shape.unknown_rank:
        return "?"
    return "(" + ", ".join("?" if d.size < 0 else str(d.size) for d in shape.dim) + ")"


def _attrs_text(node: Any) -> str | None:
    """The node's attributes, one ``key: value`` a line, each value cut short."""
    lines = []
    for key in sorted(node.attr):
        if key == "_output_shapes":
            continue
        text = _attr_value(node.attr[key])
        if len(text) > MAX_ATTR_CHARS:
            text = text[:MAX_ATTR_CHARS] + "…"
        lines.append(f"{key}: {text}")
    return "\n".join(lines) or None


def _attr_value(value: Any) -> str:
    which = value.WhichOneof("value")
    if which == "type":
        return _dtype(value.type)
    if which == "shape":
        return _tensor_shape(value.shape)
    if which == "tensor":
        return f"{_dtype(value.tensor.dtype)} tensor {_tensor_shape(value.tensor.tensor_shape)}"
    if which == "s":
        return value.s.decode("utf-8", errors="replace")
    if which == "func":
        return value.func.name
    if which == "list":
        items = list(value.list.s) or list(value.list.i) or list(value.list.f)
        items = items or [_dtype(t) for t in value.list.type]
        items = items or [_tensor_shape(s) for s in value.list.shape]
        return (
            "["
            + ", ".join(
                i.decode("utf-8", "replace") if isinstance(i, bytes) else str(i) for i in items
            )
            + "]"
        )
    return str(getattr(value, which)) if which else ""


def _dtype(dtype: int) -> str:
    try:
        return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()
    except ValueError:
        return str(dtype)
