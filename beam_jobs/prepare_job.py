"""`run()` for `boxflow prepare`: plan, run the Beam pipeline, publish, summarize."""

from __future__ import annotations

import shlex
import sys
import time
from typing import Callable

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.transforms import environments

from beam_jobs.prepare_pipeline import build_prepare_pipeline, output_splits
from beam_jobs.prepare_settings import DIRECT_RUNNER, PrepareSettings
from beam_jobs.publish import claim_out_dir, new_staging_dir, publish
from beam_jobs.sources.plan import plan_source
from beam_jobs.transforms import METRICS_NAMESPACE


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(settings: PrepareSettings, progress: Callable[[str], None] = _to_stderr) -> dict:
    """Runs one prepare job end to end and returns the `dataset_info.json` content."""
    started = time.monotonic()
    progress(f"[prepare] planning {settings.source_format} input {settings.input_path}")
    plan = plan_source(settings)
    planned = f"{len(plan.items)} images" if plan.tfrecord_pattern is None else f"records of {plan.tfrecord_pattern}"
    progress(f"[prepare] planned {planned}; running Beam on {settings.runner}"
             + (f" with {settings.workers} workers" if settings.runner == "DirectRunner" else ""))
    claim_out_dir(settings.out_dir)
    staging = new_staging_dir(settings.out_dir)
    try:
        options = PipelineOptions(settings.pipeline_args())
        runner = _local_runner(options, settings.workers) if settings.runner == DIRECT_RUNNER else None
        pipeline = beam.Pipeline(runner=runner, options=options)
        build_prepare_pipeline(pipeline, plan, settings, staging)
        result = pipeline.run()
        result.wait_until_finish()
        progress(f"[prepare] pipeline finished in {time.monotonic() - started:.1f}s; publishing to {settings.out_dir}")
        return publish(staging, settings, plan, output_splits(plan, settings), _counters(result))
    except BaseException:
        if FileSystems.exists(staging):
            FileSystems.delete([staging])
        raise


def _local_runner(options: PipelineOptions, workers: int) -> fn_runner.FnApiRunner:
    """The runner DirectRunner itself ends up using, minus its first attempt at Prism.

    Beam 2.77's DirectRunner first tries PrismRunner, which downloads a binary: offline
    that costs seconds per run before it falls back to the FnApiRunner. With several
    workers, each is a `beam_jobs.local_worker` process, Beam's own worker with its start-up
    chatter filtered; `--direct_running_mode=multi_processing` would start the same harness
    unfiltered, so the mode stays `in_memory` and this environment makes them processes.
    """
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision_info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    worker_processes = None
    if workers > 1:
        worker_processes = environments.SubprocessSDKEnvironment.from_command_string(
            f"{shlex.quote(sys.executable)} -m beam_jobs.local_worker")
    return fn_runner.FnApiRunner(default_environment=worker_processes, provision_info=provision_info)


def _counters(result) -> dict[str, int]:
    try:
        counters = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    except (NotImplementedError, KeyError):  # some runners report no metrics
        return {}
    totals: dict[str, int] = {}
    for counter in counters:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    return dict(sorted(totals.items()))


def format_summary(info: dict) -> str:
    """The human-readable run summary: images and boxes per split and class, rejects by reason."""
    lines = [f"{'split':<8} {'images':>8} {'boxes':>8}  boxes per class"]
    for split, stats in info["splits"].items():
        per_class = ", ".join(f"{name} {count}" for name, count in stats["boxes_per_class"].items()) or "-"
        lines.append(f"{split:<8} {stats['images']:>8} {stats['boxes']:>8}  {per_class}")
    accounting = info["accounting"]
    lines.append(
        f"images: {accounting['images_read']} read = {accounting['images_written']} written + "
        f"{accounting['images_rejected']} rejected; boxes: {accounting['boxes_read']} read = "
        f"{accounting['boxes_written']} written + {accounting['boxes_rejected']} rejected + "
        f"{accounting['boxes_dropped_with_rejected_images']} in rejected images "
        f"({accounting['boxes_clipped']} clipped)"
    )
    reasons = ", ".join(f"{reason} {count}" for reason, count in info["rejected"]["by_reason"].items())
    lines.append(f"rejected.jsonl: {reasons or 'nothing rejected'}")
    return "\n".join(lines)


def rejected_fraction(info: dict) -> float:
    read = info["accounting"]["images_read"]
    return info["accounting"]["images_rejected"] / read if read else 0.0
