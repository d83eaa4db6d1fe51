"""Training benchmark: a pipeline's ``model`` asset for one as-of day vs a bare ``lightgbm.train``.

``--pipeline NAME`` (default ``flight_delay``) picks any declared pipeline; everything below comes
from its spec. Setup (untimed, ``common.features_setup``): replay the source's first 90 days (more
if the spec's window needs them) into a temporary landing zone, write their ``features`` partitions
with the library's own functions and create the SQLite MLflow store and experiment. The as-of day is
the last of them. Timed, ``REPEATS`` times each, medians reported:

1. asset: ``<pipeline>/model`` as of that day executed in-process (read the window, ``train_model``,
   data versions, MLflow logging and registration, Dagster run bookkeeping), as a job of that one
   asset resolved once before the timing, as a code location resolves its jobs once when it loads
   (an ad-hoc ``asset_selection`` per call rebuilt the job's snapshot every run);
2. bare: ``lightgbm.train`` with the same parameters (the task's objective), the same matrices
   (built with ``Encoding`` as ``train_model`` does, outside the timing) and the same early stopping;
3. the asset's pieces, calling the same library functions one by one: where the time goes
   (``train_model`` is Encoding + ``lightgbm.train`` + scoring the validation days).

Why: training should cost what LightGBM costs; the target is asset/bare at most 1.3, judged on the
median of the per-repetition ratios (each repetition times the asset and the bare call back to back,
so both see the same load); the spread of those ratios is printed beside it, and the ratio of the
CPU time this process and the child processes it waited for spent on each (steadier than wall time
on a machine shared with other work, but blind to time spent waiting, e.g. on fsync; the children
count because Dagster's compute-log capture used to start four processes per run).
Run from the repository root: ``.venv/bin/python benchmarks/train.py [--pipeline NAME]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Callable

from common import (
    add_pipeline_argument,
    cpu_seconds,
    features_setup,
    history_days,
    median,
    report,
    result_name,
    spread,
    temp_home,
    timed,
    verdict,
)

REPEATS = 5
TARGET_RATIO = 1.3


def bare_training(spec, store, split, params: dict) -> tuple[Callable, dict[str, int]]:
    """``lightgbm.train`` as ``train_model`` calls it, on matrices encoded here, outside the timing;
    and the window's rows."""
    import lightgbm as lgb

    from mlplatform.core.training.model import Encoding

    label, categorical = spec.label.name, spec.features.categorical
    train = store.read_days(spec.name, "features", split.train)
    validation = store.read_days(spec.name, "features", split.validation)
    encoding = Encoding.fit(train, categorical, spec.features.numeric)
    x_train, y_train = encoding.matrix(train), train[label].to_numpy()
    x_val, y_val = encoding.matrix(validation), validation[label].to_numpy()

    def bare() -> lgb.Booster:
        train_set = lgb.Dataset(x_train, label=y_train, feature_name=encoding.features,
                                categorical_feature=categorical, free_raw_data=True)  # fmt: skip
        valid_set = lgb.Dataset(x_val, label=y_val, reference=train_set)
        stop = lgb.early_stopping(spec.model.early_stopping_rounds, verbose=False)
        return lgb.train(params, train_set, num_boost_round=spec.model.num_boost_round,
                         valid_sets=[valid_set], callbacks=[stop])  # fmt: skip

    return bare, {"train": train.height, "validation": validation.height}


def asset_pieces(spec, store, tracking, split, params: dict, as_of: str) -> dict[str, float]:
    """Seconds of each piece of the asset's work, calling the same library functions in turn."""
    from mlplatform.core.evaluation.metrics import best_f1_threshold
    from mlplatform.core.training.fit import train_model
    from mlplatform.core.training.model import Encoding
    from mlplatform.core.training.tracking import log_training

    label, categorical, numeric = spec.label.name, spec.features.categorical, spec.features.numeric
    task = spec.task_def
    seconds: dict[str, float] = {}

    def read_window() -> tuple:
        read = lambda days: store.read_days(spec.name, "features", days)  # noqa: E731
        return read(split.train), read(split.validation)

    def encode() -> None:
        encoding = Encoding.fit(train, categorical, numeric)
        encoding.matrix(train), encoding.matrix(validation)

    def score(model) -> None:
        scores, truth = model.predict(validation), validation[label].to_numpy()
        task.metrics(truth, scores, best_f1_threshold(truth, scores) if task.has_threshold else math.nan)

    def data_versions() -> dict[str, str]:
        return {f"features/day={d}": store.data_version(spec.name, "features", d) for d in split.all_days}

    def log(result, versions: dict) -> None:
        client, experiment = tracking.client(), tracking.experiment_id(spec.name)
        tags = {"pipeline": spec.name, "task": spec.task}
        log_training(
            client, experiment, spec.name, as_of, split, result, params, versions, tags, task.classes
        )

    seconds["read"], (train, validation) = timed(read_window)
    seconds["encode"], _ = timed(encode)
    seconds["train_model"], result = timed(
        train_model, train, validation, label, categorical, numeric, spec.model, task
    )
    seconds["after_train"], _ = timed(score, result.model)
    seconds["data_versions"], versions = timed(data_versions)
    seconds["mlflow"], _ = timed(log, result, versions)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_pipeline_argument(parser)
    args = parser.parse_args()
    with temp_home():
        import dagster as dg

        from mlplatform.core.pipelines import load_spec
        from mlplatform.core.training.fit import TimeSplit, training_params
        from mlplatform.definitions import defs as load_defs

        spec = load_spec(args.pipeline)
        print(f"setup: replay and features for {history_days(spec)} days from {spec.source.start_date}",
              flush=True)  # fmt: skip
        days, store, tracking = features_setup(spec, history_days(spec))
        as_of = days[-1]
        model = dg.AssetKey([spec.name, "model"])
        job = load_defs().resolve_implicit_global_asset_job_def().get_subset(asset_selection={model})
        split = TimeSplit.as_of(dt.date.fromisoformat(as_of), spec.model)
        params = training_params(spec.task_def, spec.model)
        bare, rows = bare_training(spec, store, split, params)

        times: dict[str, list[float]] = {}
        best: dict[str, set[int]] = {"asset": set(), "bare": set()}
        with dg.DagsterInstance.get() as instance:
            for n in range(REPEATS):
                print(f"timed: repetition {n + 1} of {REPEATS}", flush=True)
                cpu = cpu_seconds()
                asset_s, run = timed(job.execute_in_process, instance=instance, partition_key=as_of)
                cpu_asset, cpu = cpu_seconds() - cpu, cpu_seconds()
                bare_s, booster = timed(bare)
                cpu_bare = cpu_seconds() - cpu
                metadata = run.asset_materializations_for_node(f"{spec.name}__model")[0].metadata
                best["asset"].add(int(metadata["best_iteration"].value))
                best["bare"].add(booster.best_iteration)
                pieces = asset_pieces(spec, store, tracking, split, params, as_of)
                both = {"asset": asset_s, "bare": bare_s, "cpu_asset": cpu_asset, "cpu_bare": cpu_bare}
                for name, value in {**both, **pieces}.items():
                    times.setdefault(name, []).append(value)

    m = {name: median(values) for name, values in times.items()}
    lo = {name: min(values) for name, values in times.items()}
    m["dagster"] = m["asset"] - m["read"] - m["train_model"] - m["data_versions"] - m["mlflow"]
    ratios = [a / b for a, b in zip(times["asset"], times["bare"], strict=True)]
    ratio = median(ratios)
    cpu_ratios = [a / b for a, b in zip(times["cpu_asset"], times["cpu_bare"], strict=True)]
    share = lambda name: f"{m[name]:.2f} s ({m[name] / m['asset']:.0%})"  # noqa: E731
    table = [
        ("pipeline, task, as of", f"{spec.name}, {spec.task}, {as_of}"),
        ("lightgbm num_threads", str(params.get("num_threads"))),
        ("rows train / validation", f"{rows['train']} / {rows['validation']}"),
        ("best iteration asset / bare", f"{sorted(best['asset'])} / {sorted(best['bare'])}"),
        (f"asset run, median of {REPEATS} (min)", f"{m['asset']:.2f} s ({lo['asset']:.2f} s)"),
        (f"bare lightgbm.train, median of {REPEATS} (min)", f"{m['bare']:.2f} s ({lo['bare']:.2f} s)"),
        (
            "ratio asset/bare per repetition, median (min..max)",
            spread(ratios),
            "<= 1.3",
            verdict(ratio <= TARGET_RATIO),
        ),
        ("CPU-time ratio asset/bare per repetition (process + children)", spread(cpu_ratios)),
        (
            "ratio of the medians / of the minimums",
            f"{m['asset'] / m['bare']:.2f} / {lo['asset'] / lo['bare']:.2f}",
        ),
        ("asset breakdown (medians):", ""),
        ("  read window (read_days)", share("read")),
        ("  Encoding.fit + matrix", share("encode")),
        ("  lightgbm.train", share("bare")),
        ("  predict + threshold + metrics", share("after_train")),
        ("  data versions (data_version)", share("data_versions")),
        ("  MLflow log_training + register", share("mlflow")),
        ("  Dagster run (the remainder)", share("dagster")),
    ]
    report(result_name("train", spec.name), table, {"pipeline": spec.name, "as_of": as_of,
                            "repeats": REPEATS, "rows": rows, "seconds": times,
                            "best_iteration": {k: sorted(v) for k, v in best.items()},
                            "medians": m, "ratios": ratios, "ratio": ratio, "cpu_ratios": cpu_ratios,
                            "target_ratio_at_most": TARGET_RATIO,
                            "met": ratio <= TARGET_RATIO})  # fmt: skip


if __name__ == "__main__":
    main()
