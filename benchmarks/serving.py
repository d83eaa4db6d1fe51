"""Serving benchmark: the prediction service vs ``mlflow models serve`` on the same model, over HTTP.

``--pipeline NAME`` (default ``flight_delay``) picks any declared pipeline; everything below comes
from its spec. Setup (untimed, ``setup``), in a temporary home: replay and ingest the spec's model
window from the source's first day, train ``<pipeline>/model`` as of the day after (version 1 in the
SQLite registry) and make it the champion. Measured, every server a subprocess with one uvicorn
worker on 127.0.0.1, the load from a minimal asyncio HTTP/1.1 client (``Connection``, one keep-alive
connection per concurrent caller) in this process:

1. ours (``mlplatform serve``): single-record POSTs of the raw pre-event fields of the last ingested
   day's records (validation, online features, model, prediction log and metrics all included) at
   concurrency 1, 8 and 32: req/s, p50 and p99 latency, non-2xx and transport errors;
2. ``mlflow models serve --env-manager local --workers 1`` gets the same records as ready-made encoded
   feature rows (``dataframe_split``, one row a request, categoricals as the model's integer codes),
   so it does less work per request than ours; a probe checks it answers what our model answers (a
   probability, classes' probabilities or a value, as the task has it);
3. batch: 1,000 records (the last day's, then the days before it until 1,000) in one POST to ours,
   as JSON and as an Arrow IPC stream, vs a bare ``booster.predict`` of the encoded matrix;
   then, in this process, the steps no service can skip (the pipeline's feature function, and the
   model's encoding and predict), whose sum bounds the batch ratio: once on every CPU (the floor
   the issue names), once on the servers' CPUs (``pinned_floor``, a child process pinned as the
   service is), where the service runs, each with its own ratio lines; the verdict lines name the
   floor they use.

Both servers run on the same CPU (``SERVE_CPUS``, by default the machine's last; ``SERVE_CPUS=``
for every CPU): ours through its own ``--cpus``, MLflow's pinned before it starts, and the load
generator runs on the other CPUs while they are measured. One worker pinned to one CPU is how the
service runs fastest on a virtual machine (``mlplatform.serving.cpu_affinity``): side by side at
concurrency 8, 1,418 against 1,048 req/s unpinned.

Both servers run side by side and every level is measured in ``ROUNDS`` rounds, ours and MLflow's
alternating, each figure the median over the rounds (every round is printed). One window of a few
seconds is at the mercy of the host: on this machine the same build gave 837-1,839 req/s at
concurrency 8 within ten minutes, and measuring one server after the other also compared two
different moments of the host.

Why: the service computes its own features and logs every answer, and should still beat the stock
MLflow server. Targets (issue 19): at concurrency 8 ours/MLflow req/s >= 10 and our p99 <= 5 ms;
a batch of 1,000 (JSON and Arrow) within 1.5x of the in-process floor (the pipeline's feature
function + encode + predict). Run from the repository root:
``.venv/bin/python benchmarks/serving.py [--pipeline NAME]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import uvloop
from common import (
    REPO,
    add_pipeline_argument,
    days_from,
    median,
    report,
    result_name,
    temp_home,
    timed,
    verdict,
)

from mlplatform.core.processes import stop_process_groups
from mlplatform.serving.arrow_batch import ARROW_STREAM, ipc_stream
from mlplatform.serving.cpu_affinity import format_cpu_list, parse_cpu_list
from mlplatform_tests.ports import free_port

LEVELS = {1: 2000, 8: 4000, 32: 4000}  # concurrency -> requests (each level also capped in time)
LEVEL_SECONDS, WARMUP, BATCH, REPEATS, ROUNDS = 20.0, 300, 1000, 7, 3
TARGET_RATIO, TARGET_P99_MS, TARGET_FLOOR = 10.0, 5.0, 1.5
COUNTS = ("requests", "non_2xx", "transport_errors")  # summed over a level's rounds
JSON = {"Content-Type": "application/json"}
BIN = Path(sys.executable).parent


def start(command: list[str], env: dict, home: Path, ready: str) -> tuple[subprocess.Popen, str]:
    """Start a server (``{port}`` in ``command``) in its own process group; wait for ``ready``."""
    port = str(free_port())
    base, log = f"http://127.0.0.1:{port}", home / f"{Path(command[0]).name}-{port}.log"
    command = [part.replace("{port}", port) for part in command]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base + ready, timeout=2).status_code == 200:
                return process, base
        time.sleep(0.25)
    stop(process)
    raise RuntimeError(f"{command[:4]} did not become ready:\n{log.read_text()[-3000:]}")


def server_cpus() -> set[int] | None:
    """The CPUs both servers run on: ``SERVE_CPUS`` (a CPU list; empty for every CPU), by default the
    last of this machine's when it has more than one, the load generator running on the others. One
    worker on one CPU is how the service runs fastest on a virtual machine (``serving.cpu_affinity``),
    and MLflow's server gets the same CPU."""
    if "SERVE_CPUS" in os.environ:
        return parse_cpu_list(os.environ["SERVE_CPUS"]) if os.environ["SERVE_CPUS"] else None
    allowed = os.sched_getaffinity(0)
    return {max(allowed)} if len(allowed) > 1 else None


def pinned(command: list[str], cpus: set[int] | None) -> list[str]:
    """``command`` run on ``cpus`` only: pinned as ``mlplatform serve --cpus`` pins itself, then
    exec'd, and its children inherit the pinning."""
    if not cpus:
        return command
    pin = ("import os, sys; from mlplatform.serving.cpu_affinity import pin_process; "
           f"pin_process({set(cpus)!r}); os.execv(sys.argv[1], sys.argv[1:])")  # fmt: skip
    return [sys.executable, "-c", pin, *command]


def stop(process: subprocess.Popen) -> None:
    """Terminate the server's whole process group (``mlflow models serve`` runs uvicorn as a child)."""
    stop_process_groups([process])


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams, the load generator of every level.

    The client must cost far less than the servers it measures: through an ``httpx.AsyncClient`` a
    trivial FastAPI endpoint answered 369 req/s with p99 60 ms at concurrency 8 on this machine
    (the client's connection pool was the bottleneck), through this 3,900 req/s with p99 5 ms. It
    runs on uvloop, as the server does: 0.06-0.10 ms of CPU per request against 0.09-0.13 on
    asyncio's own loop, on the two cores the server needs too.
    """

    def __init__(self, url: str) -> None:
        self.parts = urlsplit(url)
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes, content_type: str = "application/json") -> int:
        """The response status; the body is read (by length or chunks) and dropped."""
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.parts.hostname, self.parts.port)
        reader, writer = self.streams
        writer.write(f"POST {self.parts.path} HTTP/1.1\r\nHost: {self.parts.netloc}\r\nContent-Type: "
                     f"{content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
        status = int((await reader.readline()).split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            while size := int((await reader.readline()).strip(), 16):
                await reader.readexactly(size + 2)
            await reader.readline()
        else:
            await reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection") == "close":
            self.close()
        return status

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def load(url: str, bodies: list[bytes], concurrency: int, count: int) -> dict:
    """``count`` POSTs from ``concurrency`` workers, each on its own keep-alive connection."""
    latencies, failures, numbers = [], {"non_2xx": 0, "transport_errors": 0}, itertools.count()
    deadline = time.perf_counter() + LEVEL_SECONDS

    async def worker() -> None:
        connection = Connection(url)
        try:
            while (n := next(numbers)) < count and time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    status = await connection.post(bodies[n % len(bodies)])
                    failures["non_2xx"] += not 200 <= status < 300
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):  # a broken connection
                    failures["transport_errors"] += 1
                    connection.close()
                latencies.append(time.perf_counter() - sent)
        finally:
            connection.close()

    began = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    wall = time.perf_counter() - began
    ms = np.asarray(latencies) * 1000
    return {"requests": len(ms), "rps": len(ms) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), **failures}  # fmt: skip


async def post_repeatedly(url: str, body: bytes, repeats: int, content_type: str) -> list[float]:
    """Seconds of each of ``repeats`` POSTs of ``body`` on one connection, after one untimed POST."""
    connection, seconds = Connection(url), []
    try:
        assert await connection.post(body, content_type) == 200
        for _ in range(repeats):
            started = time.perf_counter()
            assert await connection.post(body, content_type) == 200
            seconds.append(time.perf_counter() - started)
    finally:
        connection.close()
    return seconds


def measure(servers: dict[str, tuple[str, list[bytes]]]) -> dict[str, dict[int, dict]]:
    """Every server at every level, ``ROUNDS`` rounds of the servers in turn: rates and latencies the
    median of the rounds, counts their sum, the rounds themselves under ``rounds``."""
    for url, bodies in servers.values():
        uvloop.run(load(url, bodies, 8, WARMUP))
    rounds: dict[str, dict[int, list[dict]]] = {name: {c: [] for c in LEVELS} for name in servers}
    for c, n in LEVELS.items():
        for r in range(ROUNDS):
            for name, (url, bodies) in servers.items():
                f = uvloop.run(load(url, bodies, c, n))
                rounds[name][c].append(f)
                print(
                    f"  {name} c={c} round {r + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in f.items()),
                    flush=True,
                )
    return {
        name: {
            c: {**{k: (sum if k in COUNTS else median)([f[k] for f in fs]) for k in fs[0]}, "rounds": fs}
            for c, fs in levels.items()
        }
        for name, levels in rounds.items()
    }  # fmt: skip


def batch_floor(spec, store, model, records: list[dict]) -> dict[str, float]:
    """Seconds (median of ``REPEATS``) of the two steps a batch cannot skip, in this process: the
    pipeline's feature function over the records with their reference rows, and the model on the
    features (encoding and predict). Their sum bounds the batch ratio whatever the service does."""
    from mlplatform.serving.online import OnlineFeatures
    from mlplatform.serving.schema import RecordValidator

    online = OnlineFeatures(spec, store)
    raw = online.frame(RecordValidator(spec).columns(records))
    features, _ = online.features(raw)
    return {
        "features_s": median([timed(online.features, raw)[0] for _ in range(REPEATS)]),
        "model_s": median([timed(model.predict, features)[0] for _ in range(REPEATS)]),
    }


def pinned_floor(records_file: Path, cpus: set[int] | None, env: dict, pipeline: str) -> dict[str, Any]:
    """``batch_floor`` where the service runs: in a child process pinned to ``cpus`` before it imports
    anything (``pinned``), as ``mlplatform serve --cpus`` pins itself, so polars' and LightGBM's
    thread pools are sized for those CPUs as the service's are. The plain floor runs on every CPU,
    polars and LightGBM spreading a batch over them, while the service has ``SERVE_CPUS`` (one CPU
    by default): this floor is the fair bound of what the service can do. Not this process pinned
    for the measurement: its pools keep one thread per CPU of the machine, and pinned so it predicted
    the batch in 8-12 ms where a child pinned before its imports took 1.7-2.1 ms (2 CPUs, one
    pinned). No ``cpus``: every CPU. The child's CPUs come back under ``cpus``."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--pipeline",
        pipeline,
        "--floor-of",
        str(records_file),
    ]
    done = subprocess.run(
        pinned(command, cpus), env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"the pinned floor failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def floor_of(pipeline: str, records_file: Path) -> None:
    """The child of ``pinned_floor``: the floor of the records in ``records_file`` (JSON) with this
    home's warehouse and version 1 of the pipeline's model, and the CPUs it ran on, printed as JSON."""
    from mlplatform.core import settings
    from mlplatform.core.data.warehouse import ParquetWarehouse
    from mlplatform.core.pipelines import load_spec
    from mlplatform.core.training.tracking import load_version

    spec = load_spec(pipeline)
    store, model = ParquetWarehouse(settings.warehouse_root()), load_version(spec.name, "1")
    floor = batch_floor(spec, store, model, json.loads(records_file.read_text()))
    print(json.dumps({**floor, "cpus": sorted(os.sched_getaffinity(0))}))


def history(spec) -> tuple[list[str], str]:
    """The days the setup ingests (the spec's model window from the source's first day) and the
    as-of day of the champion trained on them (the day after)."""
    days = days_from(spec.source.start_date, spec.model.window_days)
    return days, (dt.date.fromisoformat(days[-1]) + dt.timedelta(days=1)).isoformat()


def setup(home: Path, spec):
    """Ingest ``history(spec)``, train version 1 on it and make it the champion (untimed, quiet)."""
    sys.path.insert(0, str(REPO))
    log = home / "setup.log"
    with log.open("w") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        import dagster as dg

        from mlplatform_tests.harness import Harness

        days, as_of = history(spec)
        with dg.instance_for_test() as instance:
            harness = Harness(spec, home, instance)
            harness.make_champion(days[0], len(days), as_of)
    return harness


def served_records(spec, store, days: list[str]):
    """The raw records the benchmark sends: the last day's first (single requests cycle over them),
    then each earlier day's until a batch of ``BATCH`` is filled; how many the last day holds; and
    the days they come from."""
    import polars as pl

    frames, used = [], []
    for day in reversed(days):
        frames.append(store.read(spec.name, "raw", day))
        used.append(day)
        if sum(f.height for f in frames) >= BATCH:
            break
    return pl.concat(frames), frames[0].height, used


def encoded(spec, store, model, raw, days: list[str]):
    """The model's encoded matrix of ``raw``'s records (from ``days``) built from their stored
    features: row i is the record of row i, encoded by the model's own ``Encoding`` (what MLflow's
    server and the bare ``booster.predict`` get)."""
    import polars as pl

    features = pl.concat([store.read(spec.name, "features", d) for d in days])
    keys = raw.select(pl.col(c).cast(features.schema[c]) for c in spec.entity)
    features = keys.join(features, on=spec.entity, maintain_order="left", validate="1:1")
    assert features.height == raw.height, (features.height, raw.height)
    return model.encoding.matrix(features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pipeline_argument(parser)
    parser.add_argument("--floor-of", type=Path, help=argparse.SUPPRESS)  # pinned_floor's child
    args = parser.parse_args()
    if args.floor_of:
        return floor_of(args.pipeline, args.floor_of)
    with temp_home() as home:
        from mlplatform.core.pipelines import load_spec

        spec = load_spec(args.pipeline)
        days, as_of = history(spec)
        print(f"setup: replay and ingest {days[0]}..{days[-1]}, train {spec.name} version 1 as of {as_of}",
              flush=True)  # fmt: skip
        harness = setup(home, spec)
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # temp_home restores the environment
        from mlplatform.core.training.tracking import load_version

        store, uri = harness.store, harness.tracking.uri()
        model = load_version(spec.name, "1")
        raw, singles, sent_days = served_records(spec, store, days)
        records = json.loads(raw.select(spec.serving_columns).write_json())
        size = min(BATCH, raw.height)  # fewer only when the whole history holds fewer records
        arrow_batch = ipc_stream(raw.select(spec.serving_columns).head(size))  # the same records
        matrix = encoded(spec, store, model, raw, sent_days)
        ours_bodies = [json.dumps(r).encode() for r in records[:singles]]
        columns = model.encoding.features
        mlflow_bodies = [json.dumps({"dataframe_split": {"columns": columns, "data": [row.tolist()]}}).encode()
                         for row in matrix[:singles]]  # fmt: skip
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_REGISTRY_URI": uri,
               "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
        env.pop("MLPLATFORM_API_TOKEN", None)

        cpus = server_cpus()
        launch = [str(BIN / "mlplatform"), "serve", "--host", "127.0.0.1", "--port", "{port}",
                  *(["--cpus", format_cpu_list(cpus)] if cpus else [])]  # fmt: skip
        serve = pinned([str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{spec.name}/1", "--env-manager",
                        "local", "-h", "127.0.0.1", "-p", "{port}", "--workers", "1"], cpus)  # fmt: skip
        processes, everywhere = [], os.sched_getaffinity(0)
        try:
            ours, base = start(launch, env, home, "/ready")
            processes.append(ours)
            url = f"{base}/v1/pipelines/{spec.name}/predict"
            mlflow_server, mlflow_base = start(serve, env, home, "/ping")
            processes.append(mlflow_server)
            answer = httpx.post(mlflow_base + "/invocations", content=mlflow_bodies[0], headers=JSON)
            assert answer.status_code == 200, answer.text[-2000:]
            served = np.asarray(answer.json()["predictions"][0], dtype=float)
            agree = bool(np.allclose(served, model.booster.predict(matrix[:1])[0], rtol=0, atol=1e-9))
            print(f"timed: ours and mlflow models serve models:/{spec.name}/1 (same prediction: {agree}), "
                  f"single records cycling over the {singles} records of {days[-1]}, {ROUNDS} rounds, "
                  f"servers on CPUs {format_cpu_list(cpus) if cpus else 'all'}", flush=True)  # fmt: skip
            if cpus and everywhere - cpus:
                os.sched_setaffinity(0, everywhere - cpus)  # the load generator beside the servers
            measured = measure(
                {"ours": (url, ours_bodies), "mlflow": (mlflow_base + "/invocations", mlflow_bodies)}
            )
            ours_figures, mlflow_figures = measured["ours"], measured["mlflow"]
            batch = json.dumps({"records": records[:size]}).encode()
            batch_s = median(uvloop.run(post_repeatedly(url, batch, REPEATS, JSON["Content-Type"])))
            arrow_s = median(uvloop.run(post_repeatedly(url, arrow_batch, REPEATS, ARROW_STREAM)))
        finally:
            os.sched_setaffinity(0, everywhere)
            for process in processes:
                stop(process)
        bare_s = median([timed(model.booster.predict, matrix[:size])[0] for _ in range(REPEATS)])
        floor_s = batch_floor(spec, store, model, records[:size])
        (home / "batch.json").write_text(json.dumps(records[:size]))
        pinned_s = pinned_floor(home / "batch.json", cpus, env, spec.name)

    rows: list[tuple[str, ...]] = [
        ("pipeline, task", f"{spec.name}, {spec.task}"),
        ("records", f"{singles} of {days[-1]} (single); {size} of {sent_days[-1]}..{days[-1]} (batch)"),
    ]
    ratios = {c: ours_figures[c]["rps"] / mlflow_figures[c]["rps"] for c in LEVELS}
    for c in LEVELS:
        for who, f in (("ours", ours_figures[c]), ("mlflow", mlflow_figures[c])):
            spread = "-".join(
                f"{g:,.0f}" for g in (min(r["rps"] for r in f["rounds"]), max(r["rps"] for r in f["rounds"]))
            )
            line = f"{f['rps']:,.0f} req/s ({spread})  p50 {f['p50_ms']:.2f}  p99 {f['p99_ms']:.2f} ms"
            rows.append((f"c={c:<2} {who} (non-2xx {f['non_2xx']}, errors {f['transport_errors']})", line))
        target = (">= 10", verdict(ratios[c] >= TARGET_RATIO)) if c == 8 else ()
        rows.append((f"c={c:<2} ratio ours/mlflow req/s", f"{ratios[c]:.2f}", *target))
    p99, batch_ratio, arrow_ratio = ours_figures[8]["p99_ms"], bare_s / batch_s, bare_s / arrow_s
    bound = bare_s / (floor_s["features_s"] + floor_s["model_s"])
    floor = floor_s["features_s"] + floor_s["model_s"]
    over_floor, arrow_over_floor = batch_s / floor, arrow_s / floor
    served_floor = pinned_s["features_s"] + pinned_s["model_s"]
    over_served, arrow_over_served = batch_s / served_floor, arrow_s / served_floor
    on = f"CPU{'s' * (len(cpus) > 1)} {format_cpu_list(cpus)}" if cpus else "every CPU"
    rows += [
        ("c=8  our p99, median of the rounds", f"{p99:.2f} ms", "<= 5 ms", verdict(p99 <= TARGET_P99_MS)),
        ("c=8  our p99 of each round", ", ".join(f"{r['p99_ms']:.2f}" for r in ours_figures[8]["rounds"])),
        (f"batch {size}: service, median of {REPEATS}", f"{size / batch_s:,.0f} rows/s ({batch_s * 1e3:.1f} ms)"),
        (f"batch {size}: bare booster.predict", f"{size / bare_s:,.0f} rows/s ({bare_s * 1e3:.2f} ms)"),
        ("batch ratio service/bare", f"{batch_ratio:.3f}"),
        (f"batch {size} as an Arrow IPC stream: service", f"{size / arrow_s:,.0f} rows/s ({arrow_s * 1e3:.1f} ms)"),
        ("batch ratio service (Arrow)/bare", f"{arrow_ratio:.3f}"),
        (f"batch {size} in process: features (the pipeline's function)", f"{floor_s['features_s'] * 1e3:.2f} ms"),
        (f"batch {size} in process: encode and predict", f"{floor_s['model_s'] * 1e3:.2f} ms"),
        ("batch ratio bound: bare / (features + encode and predict)", f"{bound:.3f}"),
        (f"batch {size} in process on the service's {on}: features", f"{pinned_s['features_s'] * 1e3:.2f} ms"),
        (f"batch {size} in process on the service's {on}: encode and predict", f"{pinned_s['model_s'] * 1e3:.2f} ms"),
        ("batch floor: every CPU / the service's CPUs", f"{floor * 1e3:.2f} / {served_floor * 1e3:.2f} ms"),
        ("batch service (JSON) / in-process floor (every CPU)", f"{over_floor:.2f}", "<= 1.5", verdict(over_floor <= TARGET_FLOOR)),
        ("batch service (Arrow) / in-process floor (every CPU)", f"{arrow_over_floor:.2f}", "<= 1.5", verdict(arrow_over_floor <= TARGET_FLOOR)),
        (f"batch service (JSON) / floor on the service's {on}", f"{over_served:.2f}", "<= 1.5", verdict(over_served <= TARGET_FLOOR)),
        (f"batch service (Arrow) / floor on the service's {on}", f"{arrow_over_served:.2f}", "<= 1.5", verdict(arrow_over_served <= TARGET_FLOOR)),
    ]  # fmt: skip
    met = {
        "ratio_c8": ratios[8] >= TARGET_RATIO,
        "p99_c8": p99 <= TARGET_P99_MS,
        "batch_floor": over_floor <= TARGET_FLOOR,
        "batch_arrow_floor": arrow_over_floor <= TARGET_FLOOR,
        "batch_served_floor": over_served <= TARGET_FLOOR,
        "batch_arrow_served_floor": arrow_over_served <= TARGET_FLOOR,
    }
    figures: dict[str, Any] = {"ours": ours_figures, "mlflow": mlflow_figures, "ratio": ratios,
               "batch": {"rows": size, "service_s": batch_s, "bare_s": bare_s, "ratio": batch_ratio,
                         "service_arrow_s": arrow_s, "ratio_arrow": arrow_ratio,
                         **floor_s, "ratio_bound": bound, "over_floor": over_floor,
                         "arrow_over_floor": arrow_over_floor,
                         "served_cpus": format_cpu_list(cpus) if cpus else None,
                         "served_features_s": pinned_s["features_s"], "served_model_s": pinned_s["model_s"],
                         "over_served_floor": over_served,
                         "arrow_over_served_floor": arrow_over_served},
               "targets": {"ratio_c8": TARGET_RATIO, "p99_c8_ms": TARGET_P99_MS, "batch_floor": TARGET_FLOOR}, "met": met}  # fmt: skip
    report(result_name("serving", spec.name), rows, {"pipeline": spec.name, **figures})


if __name__ == "__main__":
    main()
