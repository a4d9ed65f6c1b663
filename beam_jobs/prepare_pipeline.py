"""The `boxflow prepare` Beam pipeline: read → split into shards → validate, encode and write each
shard, plus the rejections and the summary.

Each step is a composite `PTransform` (`beam_jobs/transforms/`) around pure functions (in
`sources/`, `image_check`, `validate`, `encode`); `build_prepare_pipeline` only wires them.
Everything rejected leaves through a `rejected` output and is counted with Beam metrics under the
`boxflow` namespace.
"""

from __future__ import annotations

import apache_beam as beam

from beam_jobs.prepare_settings import PrepareSettings
from beam_jobs.sources.source_plan import SourcePlan
from beam_jobs.split import TRAIN, VAL
from beam_jobs.transforms import REJECTED
from beam_jobs.transforms.class_names import ClassNames
from beam_jobs.transforms.read_sources import ReadSourceImages
from beam_jobs.transforms.run_outputs import WriteRejections, WriteSummary
from beam_jobs.transforms.shard_assignment import GroupByShard
from beam_jobs.transforms.shard_writing import WriteShards


def output_splits(plan: SourcePlan, settings: PrepareSettings) -> tuple[str, ...]:
    """The splits this run writes: the source's own, plus those hashing can assign."""
    hashed = (TRAIN, VAL) if settings.val_fraction > 0 else (TRAIN,)
    own = plan.splits if settings.use_source_splits and plan.splits else ()
    return tuple(dict.fromkeys(own + hashed))


def build_prepare_pipeline(pipeline: beam.Pipeline, plan: SourcePlan, settings: PrepareSettings, staging_dir: str) -> None:
    """Wires the prepare steps; every output lands in `staging_dir` for `publish` to move."""
    read = pipeline | "Read" >> ReadSourceImages(plan)
    class_names = read["images"] | "ClassNames" >> ClassNames(plan.class_names)
    written = (read["images"]
               | "Split" >> GroupByShard(settings)
               | "ValidateEncodeWrite" >> WriteShards(staging_dir, settings, class_names))
    _ = ((read[REJECTED], written[REJECTED])
         | "AllRejections" >> beam.Flatten()
         | "WriteRejections" >> WriteRejections(staging_dir))
    _ = written["images"] | "WriteSummary" >> WriteSummary(staging_dir, read["images_read"], read["images"],
                                                          class_names)
