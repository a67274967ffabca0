"""The ``kboard`` command line."""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import re
import sys
from typing import Any

import click

from kboard.export import (
    KINDS,
    LAYOUTS,
    Selection,
    count_points,
    runs_table_csv,
    write_export,
)
from kboard.provider import (
    DataProvider,
    StorageError,
    TagInfo,
    default_cache_dir,
    hparam_names,
    load_logdir,
    parse_logdir_spec,
    parse_storage_options,
)
from kboard.tfevents.events import Kind
from kboard.version import __version__

_KIND_ORDER = (
    Kind.SCALARS, Kind.IMAGES, Kind.HISTOGRAMS, Kind.TEXT, Kind.MODEL, Kind.GRAPH, Kind.HPARAMS,
    Kind.OTHER,
)  # fmt: skip


# Exit statuses beyond click's 0 (success), 1 (an error, said on stderr) and 2 (bad usage).
EXIT_PROBLEMS = 3  # inspect read the logdir and listed problems in its files


def _logdir_option(func):  # type: ignore[no-untyped-def]
    """--logdir (one path, never split) or --logdir_spec (several, named), as ``logdir``;
    --storage-option key=value pairs, as ``storage_options``."""

    @functools.wraps(func)
    def with_logdir(  # type: ignore[no-untyped-def]
        *args,
        logdir: str | None,
        logdir_spec: str | None,
        storage_option: tuple[str, ...],
        **kwargs,
    ):
        try:
            options = parse_storage_options(storage_option)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--storage-option") from None
        return func(
            *args, logdir=logdir_choice(logdir, logdir_spec), storage_options=options, **kwargs
        )

    with_logdir = click.option(
        "--storage-option",
        multiple=True,
        metavar="KEY=VALUE",
        help="An option of the object store's fsspec filesystem (repeatable), e.g. "
        "endpoint_url=http://localhost:9000 or anon=true; JSON values are decoded. "
        "Credentials are best left to the store's usual variables and files.",
    )(with_logdir)
    with_logdir = click.option(
        "--logdir_spec",
        metavar="NAME:PATH,...",
        help="Several logdirs, each named: name1:path1,name2:path2 (TensorBoard's flag); "
        "their runs are named name1/..., name2/....",
    )(with_logdir)
    return click.option(
        "--logdir",
        metavar="DIR",
        help="Directory of runs: one path, taken as it is (':' and ',' included), or an fsspec "
        "URL (s3://bucket/prefix, gs://..., az://...).",
    )(with_logdir)


def logdir_choice(logdir: str | None, logdir_spec: str | None) -> str | dict[str, str]:
    """The one path of --logdir, or the named paths of --logdir_spec (exactly one given)."""
    if logdir is not None and logdir_spec is not None:
        raise click.UsageError("give --logdir or --logdir_spec, not both")
    if logdir_spec is not None:
        try:
            return parse_logdir_spec(logdir_spec)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if not logdir:
        raise click.UsageError("missing --logdir DIR (or --logdir_spec name1:path1,name2:path2)")
    return logdir


def read_logdir(
    logdir: str | dict[str, str], storage_options: dict[str, Any] | None = None
) -> DataProvider:
    """Read a logdir once, turning a missing directory, a file or a missing storage backend
    into a CLI error."""
    try:
        return load_logdir(logdir, storage_options=storage_options)
    except (FileNotFoundError, NotADirectoryError, ImportError, StorageError) as exc:
        raise click.ClickException(str(exc)) from None


def _listen_options(func):  # type: ignore[no-untyped-def]
    """The --host and --port options of the commands that serve the page."""
    func = click.option(
        "--port",
        type=click.IntRange(0, 65535),
        help="Port to listen on; taken, it is an error; 0 takes any free port "
        "[default: 6006, or the next free one, said so].",
    )(func)
    return click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Address to listen on; 0.0.0.0 serves every interface (use with care).",
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="kboard")
@click.option("-v", "--verbose", is_flag=True, help="Log what the reader does.")
def cli(verbose: bool) -> None:
    """kboard: a dashboard and toolkit for TensorBoard event files."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="kboard: %(levelname)s: %(message)s",
    )


@cli.command()
@_logdir_option
@click.pass_context
def inspect(
    ctx: click.Context, logdir: str | dict[str, str], storage_options: dict[str, Any]
) -> None:
    """List runs, tags, points and step ranges, and any problem found.

    Exits 0 when no problem was found, 3 when problems are listed, 1 when the logdir cannot
    be read.
    """
    data = read_logdir(logdir, storage_options)
    click.echo(describe(data))
    if data.problems():
        ctx.exit(EXIT_PROBLEMS)


@cli.command()
@_logdir_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table (for reading), csv (one row per run) or json (the /api/runs_table answer).",
)
def runs(logdir: str | dict[str, str], storage_options: dict[str, Any], output_format: str) -> None:
    """Sum up every run: its scalars' last, min and max, its hyperparameters and metrics."""
    table = read_logdir(logdir, storage_options).runs_table()
    if output_format == "json":
        click.echo(json.dumps(table, indent=1, allow_nan=False))
    elif output_format == "csv":
        click.echo(runs_table_csv(table), nl=False)
    else:
        click.echo(runs_text(table))


def short_number(value: Any) -> str:
    """A value for reading: floats to 6 significant digits, whole floats without ``.0``."""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def runs_text(table: dict[str, Any]) -> str:
    """The runs table for a terminal: a line per run, then a line per scalar tag."""
    num = short_number
    lines = []
    for row in table["rows"]:
        head = row["run"]
        if row.get("duration") is not None:
            head += f"  duration {row['duration']:.1f}s"
        session = row.get("session")
        if session:
            head += f"  {session['status']}"
            if not re.fullmatch(r"[0-9a-f]{64}", session["group"] or ""):  # hp's hash says nothing
                head += f"  group {session['group']}"
            values = row.get("hparams", {})
            head += "".join(f"  {name}={num(values[name])}" for name in values)
        lines.append(head)
        for key, metric in row.get("metrics", {}).items():
            if metric:
                lines.append(
                    f"  metric {key}: last {num(metric['last'])} (step {metric['step']}), "
                    f"best {num(metric['best'])} (step {metric['best_step']})"
                )
        for tag, stats in row["scalars"].items():
            if not stats["count"]:
                continue
            lines.append(
                f"  {tag}: {plural(stats['count'], 'point')}, steps "
                f"{stats['first_step']}..{stats['last_step']}, last {num(stats['last'])}, "
                f"min {num(stats['min'])}, max {num(stats['max'])}"
            )
    return "\n".join(lines) if lines else "no runs"


def describe(data: DataProvider) -> str:
    """Return a readable summary of every run, tag and problem."""
    lines: list[str] = []
    infos = {r.name: r for r in data.runs()}
    runs = sorted(infos)
    if not runs:
        lines.append("No event files found (files named like events.out.tfevents.*).")
    by_kind = {kind: data.tags(kind) for kind in _KIND_ORDER}
    for run in runs:
        lines.append(f"run {run}")
        info = infos[run]
        if info.attempts > 1 or info.overwritten:
            lines.append(
                f"  restarted {plural(info.attempts - 1, 'time')}: {info.overwritten} earlier "
                "values replaced in the default view (kboard export --overwritten has them)"
            )
        width = max((len(t) for tags in by_kind.values() for t in tags.get(run, {})), default=0)
        for kind in _KIND_ORDER:
            tags = by_kind[kind].get(run)
            if not tags:
                continue
            lines.append(f"  {kind.value}")
            for tag, info in sorted(tags.items()):
                lines.append(f"    {tag:<{width}}  {_series_line(data, run, kind, tag, info)}")
    problems = data.problems()
    if problems:
        lines.append("")
        lines.append(f"problems ({len(problems)})")
        for p in problems:
            lines.append(f"  {p.run}: {os.path.basename(p.path)}: {p.message}")
    for stats in data.storage_stats():
        lines.append("")
        lines.append(
            f"storage {stats['url']}: {plural(stats['requests'], 'request')} "
            f"({stats['list_requests']} list, {stats['get_requests']} get, "
            f"{stats['retries']} retried), {stats['bytes_read']:,} bytes read"
        )
    return "\n".join(lines)


def plural(count: int, word: str) -> str:
    """``1 time``, ``3 times``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _series_line(data: DataProvider, run: str, kind: Kind, tag: str, info: TagInfo) -> str:
    if kind is Kind.SCALARS:
        cols = data.scalars(run, tag)
        count, steps = len(cols), cols.steps
    else:
        samples = data.samples(run, kind, tag)
        count, steps = len(samples), [s.step for s in samples]
    text = f"{count:>8} point{'' if count == 1 else 's'}"
    if count:
        text += f"  steps {steps[0]}..{steps[-1]}"
    if kind is not Kind.SCALARS:
        kept, seen = data.sample_counts(run, kind, tag)
        if seen > kept:
            text += f"  (kept {kept} of {seen})"
    if kind is Kind.OTHER:
        text += f"  plugin {info.plugin_name or '(none)'}"
    return text


@cli.command()
@_logdir_option
@click.option(
    "-o",
    "--output",
    default="-",
    metavar="FILE",
    help="Output file (.json for JSON), - for stdout.",
)
@click.option("--runs", metavar="REGEX", help="Only runs whose name matches (re.search).")
@click.option("--tags", metavar="REGEX", help="Only tags whose name matches (re.search).")
@click.option(
    "--format",
    "layout",
    type=click.Choice(LAYOUTS),
    default="long",
    show_default=True,
    help="long: a row per point; wide: a row per step.",
)
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="scalars",
    show_default=True,
    help="What to export (histograms: a row per bucket).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Write JSON (the default for an output file ending in .json).",
)
@click.option(
    "--overwritten",
    is_flag=True,
    help="Every value ever written, replaced ones too (restarted runs), with attempt and "
    "overwritten columns (long layout).",
)
@click.option(
    "--group",
    metavar="REGEX",
    help="Group runs by the regex's capture groups (e.g. '(.*)_seed\\d+'); write per group, "
    "tag and step: group,tag,step,mean,median,std,min,max,count.",
)
@click.option(
    "--smoothing",
    type=float,
    default=0.0,
    show_default=True,
    metavar="W",
    help="With --group or --group-by: smooth each member (TensorBoard's EMA, 0 <= W < 1) "
    "before aggregating.",
)
@click.option(
    "--group-by",
    metavar="HPARAMS",
    help="Group runs by these hyperparameters' values (comma-separated, e.g. 'lr,batch'); runs "
    "without them are left out. Written as with --group, the group named 'lr=0.1'.",
)
def export(
    logdir: str | dict[str, str],
    storage_options: dict[str, Any],
    output: str,
    runs: str | None,
    tags: str | None,
    layout: str,
    kind: str,
    as_json: bool,
    overwritten: bool,
    group: str | None,
    smoothing: float,
    group_by: str | None,
) -> None:
    """Export every point as CSV (run,tag,step,wall_time,value) or JSON."""
    if group is not None and group_by is not None:
        raise click.UsageError("give --group (a regex) or --group-by (hyperparameters), not both")
    flag = "--group-by" if group_by is not None else "--group"
    if smoothing and group is None and group_by is None:
        raise click.UsageError(
            "--smoothing applies to --group or --group-by (smoothing before aggregation)"
        )
    if (group is not None or group_by is not None) and layout != "long":
        raise click.UsageError(f"{flag} needs --format long (a row per group, tag and step)")
    names = hparam_names(group_by)
    if group_by is not None and not names:
        raise click.BadParameter("name at least one hyperparameter", param_hint="--group-by")
    try:
        sel = Selection(runs, tags, kind, overwritten, group, smoothing, names)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if overwritten and layout != "long":
        raise click.UsageError("--overwritten needs --format long (a row per value)")
    fmt = "json" if as_json or output.lower().endswith(".json") else "csv"
    data = read_logdir(logdir, storage_options)
    to_stdout = output == "-"
    show_progress = sys.stderr.isatty() and not (to_stdout and sys.stdout.isatty())
    try:
        total = count_points(data, sel)
    except ValueError as exc:  # a hyperparameter no run has
        raise click.BadParameter(str(exc), param_hint=flag) from None
    try:
        out = (
            io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=False)
            if to_stdout
            else open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115
        )
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    try:
        with click.progressbar(
            length=total, label="exporting", file=sys.stderr, hidden=not show_progress
        ) as bar:
            rows = write_export(data, out, sel, fmt=fmt, layout=layout, progress=bar.update)
        out.flush()
    except BrokenPipeError:
        if not to_stdout:
            raise click.ClickException(f"cannot write {output}: broken pipe") from None
        # The reader went away (``| head``): stop quietly, as cat and grep do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    finally:
        if to_stdout:
            out.detach()
        else:
            out.close()
    if not to_stdout:
        what = "rows (one per step)" if layout == "wide" and kind == "scalars" else "rows"
        click.echo(f"wrote {rows} {what} to {output}", err=True)


@cli.command()
@_logdir_option
@_listen_options
@click.option(
    "--reload-interval",
    type=float,
    metavar="SECONDS",
    help="Poll the logdir this often (the fallback to watching); an object store's logdir "
    "is polled less often while nothing changes, up to 4 times this "
    "[default: 5, or 30 for a logdir in an object store].",
)
@click.option(
    "--no-watch",
    is_flag=True,
    help="Do not watch the file system; rely on polling (network mounts).",
)
@click.option(
    "--threads",
    default=16,
    show_default=True,
    type=click.IntRange(2, 256),
    help="Worker threads for data requests (live-update streams hold none).",
)
@click.option(
    "--cache-dir",
    metavar="DIR",
    help="Where decoded runs are cached for a quick restart "
    "[default: $KBOARD_CACHE_DIR or ~/.cache/kboard].",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option(
    "--token",
    envvar="KBOARD_TOKEN",
    metavar="VALUE",
    help="Require this token on every request [default: $KBOARD_TOKEN; bound beyond "
    "loopback, a random one, printed in the URL].",
)
@click.option(
    "--no-auth",
    is_flag=True,
    help="Require no token even when bound beyond loopback (anyone who can reach the port "
    "reads every log).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A name the server may be reached by (repeatable); keeps the Host check on when "
    "bound to 0.0.0.0.",
)
@click.option(
    "--path-prefix",
    default="",
    metavar="PATH",
    help="Serve under this path (e.g. /kboard), behind a reverse proxy.",
)
@click.option(
    "--max-streams",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Open live-update streams at most; beyond it, 503 (pages poll instead).",
)
def serve(
    logdir: str | dict[str, str],
    storage_options: dict[str, Any],
    host: str,
    port: int | None,
    reload_interval: float | None,
    no_watch: bool,
    threads: int,
    cache_dir: str | None,
    no_cache: bool,
    token: str | None,
    no_auth: bool,
    allowed_hosts: tuple[str, ...],
    path_prefix: str,
    max_streams: int,
) -> None:
    """Serve the dashboard for a logdir until Ctrl-C."""
    from kboard.server.serve import serve_forever

    if token is not None and no_auth:
        raise click.UsageError("give --token (or KBOARD_TOKEN) or --no-auth, not both")
    serve_forever(
        logdir,
        storage_options=storage_options,
        host=host,
        port=port,
        reload_interval=reload_interval,
        watch=not no_watch,
        threads=threads,
        cache_dir=None if no_cache else (cache_dir or default_cache_dir()),
        token=token,
        no_auth=no_auth,
        allowed_hosts=allowed_hosts,
        path_prefix=path_prefix,
        max_streams=max_streams,
    )


@cli.command()
@_listen_options
@click.option(
    "--epochs",
    default=30,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Epochs to train the demo model for.",
)
def demo(host: str, port: int | None, epochs: int) -> None:
    """Train a small Keras model in the background and watch it live (needs kboard[tf])."""
    from kboard.demo import run_demo

    run_demo(host=host, port=port, epochs=epochs)


def main() -> None:
    """Entry point of the ``kboard`` console script."""
    cli(prog_name="kboard")
