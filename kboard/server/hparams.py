"""TensorBoard's hparams plugin routes, answering what TensorBoard 2.x answers.

``/data/plugin/hparams/experiment``, ``/session_groups`` and ``/download_data`` accept
TensorBoard's requests (a JSON body with POST, or ``?request=`` JSON with GET) and answer with
its JSON, built from the provider's sessions and experiment by the plain functions below, in
the steps of TensorBoard's ``list_session_groups.py``: build the sessions, group them,
aggregate their metrics, filter, sort, slice.
"""

from __future__ import annotations

import csv
import io
import json
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request
from google.protobuf import json_format, struct_pb2
from tensorboard.plugins.hparams import api_pb2

from kboard.hparams import Session, metric_run
from kboard.provider import DataProvider, NotFound
from kboard.server.context import provider
from kboard.server.responses import json_error, json_response
from kboard.tfevents.events import DATASET_TYPES, HPARAM_TYPES, SESSION_STATUSES, HParamSpec

bp = Blueprint("hparams", __name__, url_prefix="/data/plugin/hparams")


class HParamsError(ValueError):
    """A request TensorBoard answers with 400."""


# -- plain functions ------------------------------------------------------------------------
def experiment_proto(
    data: DataProvider,
    include_metrics: bool = True,
    hparams_limit: int | None = None,
    sessions: list[Session] | None = None,
) -> api_pb2.Experiment:
    """The experiment, as TensorBoard's ``experiment_from_metadata`` returns it."""
    config = data.experiment(sessions)
    out = api_pb2.Experiment(
        name=config.name,
        description=config.description,
        user=config.user,
        time_created_secs=config.time_created,
    )
    infos = sorted(
        (_hparam_info(spec) for spec in config.hparams),
        key=lambda info: (not info.differs, info.name),
    )
    out.hparam_infos.extend(infos[: hparams_limit or len(infos)])
    if include_metrics:
        for metric in config.metrics:
            out.metric_infos.add(
                name=api_pb2.MetricName(group=metric.group, tag=metric.tag),
                display_name=metric.display_name,
                description=metric.description,
                dataset_type=DATASET_TYPES.index(metric.dataset_type),
            )
    return out


def _hparam_info(spec: HParamSpec) -> api_pb2.HParamInfo:
    info = api_pb2.HParamInfo(
        name=spec.name,
        display_name=spec.display_name,
        description=spec.description,
        type=HPARAM_TYPES.index(spec.type),
        differs=spec.differs,
    )
    if spec.interval is not None:
        info.domain_interval.min_value, info.domain_interval.max_value = spec.interval
    elif spec.discrete is not None:
        info.domain_discrete.extend(list(spec.discrete))
    return info


def _set_value(target: struct_pb2.Value, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, str):
        target.string_value = value
    else:
        target.number_value = value


def session_groups(
    data: DataProvider, req: api_pb2.ListSessionGroupsRequest
) -> tuple[api_pb2.Experiment, list[api_pb2.SessionGroup]]:
    """The experiment and the session groups a request asks for, filtered and sorted."""
    include_metrics = not req.HasField("include_metrics") or req.include_metrics
    sessions = data.sessions()
    experiment = experiment_proto(data, include_metrics, sessions=sessions)
    groups: dict[str, api_pb2.SessionGroup] = {}
    for session in sessions:
        built = _session(data, session, experiment.metric_infos if include_metrics else [])
        if built.status not in req.allowed_statuses:
            continue
        group = groups.get(session.group)
        if group is None:
            group = groups[session.group] = api_pb2.SessionGroup(
                name=session.group, monitor_url=session.monitor_url
            )
            for name, value in session.hparams.items():
                if not (isinstance(value, float) and not math.isfinite(value)):
                    _set_value(group.hparams[name], value)
        group.sessions.append(built)
    result = list(groups.values())
    for group in result:
        group.sessions.sort(key=operator.attrgetter("name"))
        _aggregate(group, req)
    extractors = [_extractor(col) for col in req.col_params]
    filters = [f for col, x in zip(req.col_params, extractors) if (f := _filter(col, x))]
    result = [g for g in result if all(f(g) for f in filters)]
    result.sort(key=operator.attrgetter("name"))
    for col, extract in reversed(list(zip(req.col_params, extractors))):
        if col.order == api_pb2.ORDER_UNSPECIFIED:
            continue
        descending = col.order == api_pb2.ORDER_DESC
        if not descending and col.order != api_pb2.ORDER_ASC:
            raise HParamsError(f"Unknown col_param.order given: {col}")
        none_largest = col.missing_values_first if descending else not col.missing_values_first
        result.sort(key=_sort_key(extract, none_largest), reverse=descending)
    if any(col.HasField("include_in_result") for col in req.col_params):
        keep = {
            col.hparam
            for col in req.col_params
            if col.hparam and (not col.HasField("include_in_result") or col.include_in_result)
        }
        for group in result:
            kept = {k: v for k, v in group.hparams.items() if k in keep}
            group.ClearField("hparams")
            for name, value in kept.items():
                group.hparams[name].CopyFrom(value)
    return experiment, result


def list_session_groups(
    data: DataProvider, req: api_pb2.ListSessionGroupsRequest
) -> api_pb2.ListSessionGroupsResponse:
    """TensorBoard's ``ListSessionGroupsResponse``: one slice of the groups and their count."""
    _, groups = session_groups(data, req)
    end = req.start_index + req.slice_size
    return api_pb2.ListSessionGroupsResponse(
        session_groups=groups[req.start_index : end], total_size=len(groups)
    )


def _session(data: DataProvider, session: Session, metric_infos: Any) -> api_pb2.Session:
    out = api_pb2.Session(
        name=session.run,
        start_time_secs=session.start_time,
        model_uri=session.model_uri,
        monitor_url=session.monitor_url,
    )
    for info in metric_infos:
        run = metric_run(session.run, info.name)
        try:
            cols = data.scalars(run, info.name.tag)
        except NotFound:
            continue
        if len(cols):
            out.metric_values.add(
                name=info.name,
                wall_time_secs=float(cols.wall_times[-1]),
                training_step=int(cols.steps[-1]),
                value=float(cols.values[-1]),
            )
    if session.end_time is not None:
        out.status = SESSION_STATUSES.index(session.status)
        out.end_time_secs = session.end_time
    return out


def _aggregate(group: api_pb2.SessionGroup, req: api_pb2.ListSessionGroupsRequest) -> None:
    """Set a group's metrics from its sessions', as the request's aggregation says."""
    kind = req.aggregation_type
    if kind in (api_pb2.AGGREGATION_AVG, api_pb2.AGGREGATION_UNSET):
        stats: dict[tuple[str, str], list[api_pb2.MetricValue]] = {}
        for session in group.sessions:
            for value in session.metric_values:
                stats.setdefault((value.name.group, value.name.tag), []).append(value)
        del group.metric_values[:]
        for (metric_group, tag), values in stats.items():
            count = len(values)
            group.metric_values.add(
                name=api_pb2.MetricName(group=metric_group, tag=tag),
                value=float(sum(v.value for v in values)) / count,
                training_step=sum(v.training_step for v in values) // count,
                wall_time_secs=sum(v.wall_time_secs for v in values) / count,
            )
        return
    if kind not in (api_pb2.AGGREGATION_MEDIAN, api_pb2.AGGREGATION_MIN, api_pb2.AGGREGATION_MAX):
        raise HParamsError(f"Unknown aggregation_type in request: {kind}")
    measured = [
        (value.value, index)
        for index, session in enumerate(group.sessions)
        if (value := _metric_value(session, req.aggregation_metric)) is not None
    ]
    if kind == api_pb2.AGGREGATION_MEDIAN:
        ordered = sorted(measured, key=operator.itemgetter(0))
        pick = ordered[(len(ordered) - 1) // 2][1]
    else:
        chooser = min if kind == api_pb2.AGGREGATION_MIN else max
        pick = chooser(measured, key=operator.itemgetter(0))[1]
    del group.metric_values[:]
    group.metric_values.MergeFrom(group.sessions[pick].metric_values)


def _metric_value(holder: Any, name: api_pb2.MetricName) -> api_pb2.MetricValue | None:
    for value in holder.metric_values:
        if value.name.tag == name.tag and value.name.group == name.group:
            return value
    return None


def _extractor(col: Any) -> Callable[[api_pb2.SessionGroup], Any]:
    if col.HasField("metric"):

        def metric(group: api_pb2.SessionGroup) -> Any:
            value = _metric_value(group, col.metric)
            return value.value if value is not None else None

        return metric
    if col.HasField("hparam"):

        def hparam(group: api_pb2.SessionGroup) -> Any:
            if col.hparam not in group.hparams:
                return None
            value = group.hparams[col.hparam]
            return getattr(value, value.WhichOneof("kind"))

        return hparam
    raise HParamsError(f'Got ColParam with both "metric" and "hparam" fields unset: {col}')


def _filter(col: Any, extract: Callable[[Any], Any]) -> Callable[[Any], bool] | None:
    include_missing = not col.exclude_missing_values
    if col.HasField("filter_regexp"):
        pattern = re.compile(col.filter_regexp)

        def accept(value: Any) -> bool:
            if not isinstance(value, str):
                raise HParamsError(f"Cannot use a regexp filter for a value of type {type(value)}")
            return pattern.search(value) is not None

    elif col.HasField("filter_interval"):
        low, high = col.filter_interval.min_value, col.filter_interval.max_value

        def accept(value: Any) -> bool:
            if not isinstance(value, (int, float)):
                raise HParamsError(f"Cannot use an interval filter for a value of {type(value)}")
            return low <= value <= high

    elif col.HasField("filter_discrete"):
        allowed = list(col.filter_discrete)

        def accept(value: Any) -> bool:
            return value in allowed

    elif include_missing:
        return None
    else:

        def accept(value: Any) -> bool:
            return True

    def passes(group: Any) -> bool:
        value = extract(group)
        return include_missing if value is None else accept(value)

    return passes


def _sort_key(extract: Callable[[Any], Any], none_is_largest: bool) -> Callable[[Any], Any]:
    if none_is_largest:
        return lambda group: (extract(group) is None, extract(group))
    return lambda group: (extract(group) is not None, extract(group))


def download_rows(
    experiment: api_pb2.Experiment,
    groups: list[api_pb2.SessionGroup],
    visibility: list[bool],
) -> tuple[list[Any], list[list[Any]]]:
    """The header and rows of ``download_data``: hyperparameters, then metrics."""
    header = [h.display_name or h.name for h in experiment.hparam_infos]
    header += [m.display_name or m.name.tag for m in experiment.metric_infos]
    rows = []
    for group in groups:
        row: list[Any] = []
        for info in experiment.hparam_infos:
            value = group.hparams[info.name]
            kind = value.WhichOneof("kind")
            row.append(getattr(value, kind) if kind else "")
        values = {(v.name.group, v.name.tag): v.value for v in group.metric_values}
        row += [values.get((m.name.group, m.name.tag)) for m in experiment.metric_infos]
        rows.append([v for v, shown in zip(row, visibility) if shown])
    return [v for v, shown in zip(header, visibility) if shown], rows


def _latex(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return r"$\mathrm{NaN}$"
        if math.isinf(value):
            return "$" + ("-" if value < 0 else "+") + "\\infty$"
        scientific = f"{value:.3g}"
        if "e" in scientific:
            coefficient, exponent = scientific.split("e")
            return f"${coefficient}\\cdot 10^{{{int(exponent)}}}$"
        return f"${scientific}$"
    if isinstance(value, int):
        return f"${int(value)}$"
    return str(value).replace("_", "\\_").replace("%", "\\%")


def download_body(header: list[Any], rows: list[list[Any]], fmt: str | None) -> Response:
    """The table as TensorBoard's ``download_data`` formats it: JSON, CSV or LaTeX."""
    if fmt == "json":
        return json_response(_cleanse_download({"header": header, "rows": rows}))
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
        return Response(out.getvalue(), mimetype="text/csv")
    if fmt == "latex":
        body = "\\begin{table}[tbp]\n\\begin{tabular}{%s}\n" % ("l" * len(header))
        body += " & ".join(map(_latex, header)) + " \\\\ \\hline\n"
        body += "".join(" & ".join(map(_latex, row)) + " \\\\\n" for row in rows)
        body += "\\hline\n\\end{tabular}\n\\end{table}\n"
        return Response(body, mimetype="application/x-latex")
    raise HParamsError(f"Invalid reponses format: {fmt}")


def _cleanse_download(obj: Any) -> Any:
    """Non-finite floats as TensorBoard's ``json_util.Cleanse`` writes them."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: _cleanse_download(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cleanse_download(v) for v in obj]
    return obj


def proto_json(message: Any) -> Response:
    """A response message as TensorBoard writes it (every field, defaults too)."""
    try:
        text = json_format.MessageToJson(message, always_print_fields_with_no_presence=True)
    except TypeError:  # protobuf < 5
        text = json_format.MessageToJson(message, including_default_value_fields=True)
    return Response(text, mimetype="application/json")


def parse_request(proto_class: type) -> Any:
    """The request message: the POST body, or the ``request`` query parameter of a GET."""
    raw = (
        request.get_data(as_text=True) if request.method == "POST" else request.args.get("request")
    )
    if raw is None:
        raise HParamsError(
            f"Expected a JSON-formatted request data of type: {proto_class.__name__}"
        )
    try:
        return json_format.Parse(raw, proto_class())
    except json_format.ParseError as exc:
        raise HParamsError(f"Expected a JSON-formatted request of {proto_class.__name__}: {exc}")


# -- routes ---------------------------------------------------------------------------------
@bp.errorhandler(HParamsError)
def _bad_request(exc: HParamsError) -> Response:
    return json_error(str(exc), 400)


@bp.route("/experiment", methods=["GET", "POST"])
def experiment() -> Response:
    req = parse_request(api_pb2.GetExperimentRequest)
    include_metrics = not req.HasField("include_metrics") or req.include_metrics
    return proto_json(experiment_proto(provider(), include_metrics, req.hparams_limit))


@bp.route("/session_groups", methods=["GET", "POST"])
def session_groups_route() -> Response:
    req = parse_request(api_pb2.ListSessionGroupsRequest)
    return proto_json(list_session_groups(provider(), req))


@bp.route("/download_data", methods=["GET", "POST"])
def download_data() -> Response:
    req = parse_request(api_pb2.ListSessionGroupsRequest)
    try:
        visibility = json.loads(request.args.get("columnsVisibility", ""))
    except ValueError:
        raise HParamsError("columnsVisibility must be a JSON list of booleans") from None
    if not isinstance(visibility, list):
        raise HParamsError("columnsVisibility must be a JSON list of booleans")
    experiment, groups = session_groups(provider(), req)
    end = req.start_index + req.slice_size
    header, rows = download_rows(experiment, groups[req.start_index : end], visibility)
    return download_body(header, rows, request.args.get("format"))
