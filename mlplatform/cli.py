"""``mlplatform``: the platform's own commands (replay, bootstrap, up, serve, rollback, sql).

Everything here is a thin shell over library code: replay over ``core.data.replay``, bootstrap over the
same assets the Dagster UI materializes, recorded in the same Dagster instance.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlplatform.core import settings
from mlplatform.core.processes import stop_process_groups
from mlplatform.orchestration.console import VERBOSE_ENV


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def cmd_replay(args: argparse.Namespace) -> int:
    from mlplatform.core.data.replay import replay
    from mlplatform.core.pipelines import load_spec

    spec = load_spec(args.pipeline)
    start = args.start or spec.source.start_date
    landing = settings.landing_dir(spec.name)
    written = replay(spec, landing, start, args.days)
    end = start + dt.timedelta(days=args.days - 1)
    print(f"replayed {start}..{end} into {landing}: {len(written)} file(s) new or changed")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from mlplatform.orchestration.bootstrap import bootstrap

    cmd_replay(args)
    return bootstrap(args.pipeline, args.start, args.days, retrain=args.retrain)


def _wait_for(url: str, seconds: float) -> bool:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def _report_broken(selected: str | None) -> None:
    """Every broken pipeline on stderr, with its file and field; the others keep working. A command
    for a broken pipeline stops with that pipeline's error."""
    from mlplatform.core.pipelines import declared_pipelines

    errors = declared_pipelines().errors
    if selected in errors:
        raise errors[selected]
    for error in errors.values():
        print(f"warning: {error} (left out; the other pipelines work)", file=sys.stderr)


def write_workspace(path: Path) -> Path:
    """Dagster's workspace, one code location per pipeline folder, derived from the defs folder."""
    import yaml

    from mlplatform.definitions import workspace_config

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(workspace_config(), sort_keys=False))
    return path


def cmd_up(args: argparse.Namespace) -> int:
    """Start the Dagster UI and daemon (one code location per pipeline), the prediction service and
    the MLflow UI; Ctrl-C stops them all."""
    bin_dir = Path(sys.executable).parent
    # Absolute: the daemon resolves a relative workspace path against its own working directory.
    workspace = write_workspace(settings.home().resolve() / "workspace.yaml")
    # MLflow's server imports a Starlette module Starlette deprecates; nothing a user can act on.
    quiet = "ignore:starlette.middleware.wsgi is deprecated:UserWarning"
    warnings_env = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), quiet]))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(Path(settings.dagster_home()).resolve()),
        "PYTHONWARNINGS": warnings_env,
    }
    artifacts = Path(settings.mlflow_artifact_root()).resolve().as_uri()
    processes = {
        "Dagster UI": (
            [
                str(bin_dir / "dagster-webserver"),
                "-w",
                str(workspace),
                "-h",
                args.host,
                "-p",
                str(args.dagster_port),
            ],
            f"http://{args.host}:{args.dagster_port}/server_info",
        ),
        "Dagster daemon": ([str(bin_dir / "dagster-daemon"), "run", "-w", str(workspace)], None),
        "Prediction service": (
            [str(bin_dir / "mlplatform"), "serve", "--host", args.host, "--port", str(args.serving_port)],
            f"http://{args.host}:{args.serving_port}/health",
        ),
        "MLflow UI": (
            [
                str(bin_dir / "mlflow"),
                "server",
                "--backend-store-uri",
                settings.mlflow_tracking_uri(),
                "--default-artifact-root",
                artifacts,
                "--host",
                args.host,
                "--port",
                str(args.mlflow_port),
                "--workers",
                "1",
            ],
            f"http://{args.host}:{args.mlflow_port}",
        ),
    }
    # Started in the background (``make run &``, nohup), this process inherits SIGINT ignored and
    # its children would too, and would outlive it. A handler here resets to the default in every
    # child. The webserver and the daemon run as Dagster's production processes do (``dagster dev``
    # is superseded by ``dg dev``, which needs the dg CLI this project does not install).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = {
        name: subprocess.Popen(cmd, env=env, start_new_session=True) for name, (cmd, _) in processes.items()
    }
    names = {child.pid: name for name, child in started.items()}

    def stop(*_: object) -> None:
        for killed in stop_process_groups(list(started.values())):
            print(f"{names[killed.pid]} did not stop in 30 s and was killed", file=sys.stderr)

    def on_sigterm(*_: object) -> None:
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        for name, (_, url) in processes.items():
            if url is None:
                print(f"{name:18s} {'running' if started[name].poll() is None else 'EXITED'}", flush=True)
                continue
            state = "up" if _wait_for(url, 90) else "NOT answering yet"
            print(f"{name:18s} {url.removesuffix('/server_info')}  ({state})", flush=True)
        print(f"{'home folder':18s} {settings.home()}\nCtrl-C stops everything.", flush=True)
        while all(child.poll() is None for child in started.values()):
            time.sleep(1)
        print("a service exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


def cmd_serve(args: argparse.Namespace) -> int:
    """With ``--cpus``, the process is pinned before the service's libraries are imported: polars
    sizes its thread pool to the CPUs it may use when it is imported (see ``serving.cpu_affinity``)."""
    if args.cpus:
        from mlplatform.serving.cpu_affinity import parse_cpu_list, pin_process

        pin_process(parse_cpu_list(args.cpus))
    from mlplatform.serving.server import serve

    serve(args.host, args.port, args.poll_seconds)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Run the pipeline's rollback job on the local instance, so the UI records it too."""
    import dagster as dg

    from mlplatform.definitions import defs

    job = defs().resolve_job_def(f"{args.pipeline}_rollback")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    for event in result.get_asset_materialization_events():
        print(f"{args.pipeline}: {event.materialization.metadata['step'].value}")
    return 0 if result.success else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    import dagster as dg

    from mlplatform.definitions import defs
    from mlplatform.orchestration.bootstrap import backfill_models

    with dg.DagsterInstance.get() as instance:
        failed = backfill_models(defs(), instance, args.pipeline, args.first, args.last, args.gated)
    if failed:
        print(f"{len(failed)} day(s) failed (no version, or a gate rejected it): {', '.join(failed)}")
    return 1 if failed and not args.gated else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from mlplatform.orchestration.simulation import POLICIES, simulate

    policies = list(POLICIES) if args.policy == "all" else args.policy.split(",")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"--policy: unknown {unknown}; choose from {', '.join(POLICIES)} or all")
    out = args.out or settings.home() / "simulations" / f"{args.pipeline}-{args.start}-{args.days}d"
    report = simulate(args.pipeline, args.start, args.days, policies, out, args.parallel)
    print(f"report: {report}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb
    import polars as pl

    from mlplatform.core.data.sql import connect, one_line, pipeline_views
    from mlplatform.core.data.warehouse import ParquetWarehouse
    from mlplatform.core.pipelines import declared_pipelines

    connection, views = connect(ParquetWarehouse(settings.warehouse_root()))
    declared = [v for spec in declared_pipelines().specs.values() for v in pipeline_views(spec)]
    unwritten = [v for v in declared if v not in views]
    pl.Config.set_tbl_rows(50)
    if args.query:
        try:
            print(connection.sql(args.query).pl())
        except duckdb.Error as exc:
            print(f"mlplatform sql: {one_line(exc, views, unwritten)}", file=sys.stderr)
            return 1
        return 0
    print("views: " + ", ".join(views) + "\nend a statement with ';', Ctrl-D quits")
    buffer = ""
    for line in sys.stdin:
        buffer += line
        if buffer.strip().endswith(";"):
            try:
                result = connection.sql(buffer)
                print(result.pl() if result is not None else "ok")
            except duckdb.Error as exc:  # show the DuckDB error and keep the session
                print(f"error: {one_line(exc, views, unwritten)}")
            buffer = ""
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplatform", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="deliver N days of landing files, as upstream would")
    bootstrap = commands.add_parser(
        "bootstrap", help="replay, backfill the data and train as of the last day"
    )
    for sub in (replay, bootstrap):
        sub.add_argument("--pipeline", required=True)
        sub.add_argument("--days", type=int, required=True)
        sub.add_argument(
            "--start", type=_date, default=None, help="first day (default: the spec's start_date)"
        )
    replay.set_defaults(func=cmd_replay)
    bootstrap.add_argument("--retrain", action="store_true", help="train again even if a model exists")
    bootstrap.set_defaults(func=cmd_bootstrap)

    up = commands.add_parser(
        "up", help="start the Dagster UI and daemon, the prediction service and the MLflow UI"
    )
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--dagster-port", type=int, default=3000)
    up.add_argument("--mlflow-port", type=int, default=5000)
    up.add_argument("--serving-port", type=int, default=8000)
    up.set_defaults(func=cmd_up)

    serve = commands.add_parser("serve", help="run the prediction service (FastAPI on uvicorn)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--poll-seconds", type=float, default=5.0, help="how often to read the registry")
    serve.add_argument(
        "--cpus",
        default=os.environ.get("MLPLATFORM_SERVE_CPUS") or None,
        help="run on these CPUs only, as taskset -c writes them (1, 0-3); faster on virtual machines "
        "(default: $MLPLATFORM_SERVE_CPUS, else every CPU)",
    )
    serve.set_defaults(func=cmd_serve)

    rollback = commands.add_parser("rollback", help="stop a rollout, or move champion back to previous")
    rollback.add_argument("--pipeline", required=True)
    rollback.set_defaults(func=cmd_rollback)

    backfill = commands.add_parser(
        "backfill", help="train as of every day of a range: one run and one registered version per day"
    )
    backfill.add_argument("--pipeline", required=True)
    backfill.add_argument("--from", dest="first", type=_date, required=True, help="first as-of day")
    backfill.add_argument("--to", dest="last", type=_date, required=True, help="last as-of day")
    backfill.add_argument(
        "--gated", action="store_true", help="also run the gates and the promotion decision for each day"
    )
    backfill.set_defaults(func=cmd_backfill)

    simulate = commands.add_parser(
        "simulate", help="replay days through the whole loop and compare continuous-training policies"
    )
    simulate.add_argument("--pipeline", required=True)
    simulate.add_argument("--start", type=_date, required=True, help="first day of live traffic")
    simulate.add_argument("--days", type=int, required=True)
    simulate.add_argument(
        "--policy", default="all", help="static, weekly, daily, triggered, a comma-separated list, or all"
    )
    simulate.add_argument("--parallel", type=int, default=2, help="policies run at the same time")
    simulate.add_argument("--out", type=Path, default=None, help="report folder (default under the home)")
    simulate.set_defaults(func=cmd_simulate)

    for sub in (bootstrap, backfill, simulate):
        sub.add_argument("--verbose", action="store_true", help="print every Dagster event of every run")

    sql = commands.add_parser("sql", help="DuckDB SQL over the warehouse (one view per table)")
    sql.add_argument("query", nargs="?", help="run one query and exit; without it, read stdin")
    sql.set_defaults(func=cmd_sql)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # MLflow 3 sends usage telemetry to its vendor by default: a platform that runs in closed
    # networks must not call out unasked (MLFLOW_DISABLE_TELEMETRY=false turns it back on). The
    # servers `up` starts inherit this environment.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if getattr(args, "verbose", False):
        os.environ[VERBOSE_ENV] = "1"
    else:
        # MLflow draws a progress bar for every artifact download (each model load): noise on a
        # console that prints one line per step.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        if args.command == "up" or hasattr(args, "pipeline"):
            _report_broken(getattr(args, "pipeline", None))
        return int(args.func(args) or 0)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"mlplatform {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
