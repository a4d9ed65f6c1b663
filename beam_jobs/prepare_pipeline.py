"""The `boxflow prepare` Beam pipeline: parse → decode and validate → encode → shard.

Each step is a pure function (in `sources/`, `image_check`, `validate`, `encode`)
wrapped by a DoFn here; `build_prepare_pipeline` only wires them and the I/O.
Everything rejected leaves through a `rejected` side output and is counted with
Beam metrics under the `boxflow` namespace.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import apache_beam as beam
from apache_beam.io.tfrecordio import ReadAllFromTFRecord, WriteToTFRecord
from apache_beam.metrics import Metrics

from beam_jobs import file_io
from beam_jobs.encode import encode_example
from beam_jobs.image_check import ImageProblem, check_image
from beam_jobs.prepare_settings import PrepareSettings
from beam_jobs.source_records import AnnotationError, Reason, Rejection, SourceImage, ValidatedImage
from beam_jobs.sources.source_plan import SourcePlan
from beam_jobs.split import TRAIN, VAL, hash_split
from beam_jobs.statistics import DatasetStatisticsFn
from beam_jobs.validate import ValidationResult, image_level_problem, reject_image, validate_image

REJECTED = "rejected"
METRICS_NAMESPACE = "boxflow"
SUMMARY_FILE = "summary.json"
REJECTED_PARTS = "rejected.jsonl"


class ParseAnnotations(beam.DoFn):
    """A work item (path, record, parsed entry) → `SourceImage`, or an ANNOTATION_MALFORMED rejection."""

    def __init__(self, parse: Callable[[Any], SourceImage]):
        self._parse = parse
        self._images_read = Metrics.counter(METRICS_NAMESPACE, "images_read")
        self._malformed = Metrics.counter(METRICS_NAMESPACE, f"rejected_{Reason.ANNOTATION_MALFORMED.value}")

    def process(self, item: Any) -> Iterator[Any]:
        self._images_read.inc()
        try:
            yield self._parse(item)
        except AnnotationError as error:
            self._malformed.inc()
            yield beam.pvalue.TaggedOutput(REJECTED, Rejection(error.source, Reason.ANNOTATION_MALFORMED, error.detail))


class DecodeAndValidate(beam.DoFn):
    """`SourceImage` → `ValidatedImage` (with its split) plus a rejection for each problem found."""

    def __init__(self, val_fraction: float, drop_emptied_images: bool):
        self._val_fraction = val_fraction
        self._drop_emptied_images = drop_emptied_images
        self._class_ids: dict[str, int] = {}
        self._class_names: tuple[str, ...] = ()

    def process(self, source: SourceImage, class_names: tuple[str, ...]) -> Iterator[Any]:
        if class_names != self._class_names:
            self._class_names = class_names
            self._class_ids = {name: label for label, name in enumerate(class_names, start=1)}
        result = self._validate(source)
        for rejection in result.rejections:
            Metrics.counter(METRICS_NAMESPACE, f"{rejection.level.value}_{rejection.reason.value}").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, rejection)
        if result.image is not None:
            Metrics.counter(METRICS_NAMESPACE, "images_written").inc()
            yield result.image

    def _validate(self, source: SourceImage) -> ValidationResult:
        unusable = image_level_problem(source)
        if unusable is not None:
            return unusable
        split = source.split or hash_split(source.source_id, self._val_fraction)
        data = source.encoded
        if data is None:
            if not source.image_path or not file_io.exists(source.image_path):
                return reject_image(source, Reason.IMAGE_MISSING, f"no image file at {source.image_path or '(no name)'}")
            try:
                data = file_io.read_bytes(source.image_path)
            except OSError as error:
                return reject_image(source, Reason.IMAGE_UNREADABLE, f"cannot read {source.image_path}: {error}")
        try:
            checked = check_image(data)
        except ImageProblem as problem:
            return reject_image(source, problem.reason, problem.detail)
        return validate_image(source, checked, self._class_ids, split, self._drop_emptied_images)


def output_splits(plan: SourcePlan, settings: PrepareSettings) -> tuple[str, ...]:
    """The splits this run writes: the source's own, plus those hashing can assign."""
    hashed = (TRAIN, VAL) if settings.val_fraction > 0 else (TRAIN,)
    own = plan.splits if settings.use_source_splits and plan.splits else ()
    return tuple(dict.fromkeys(own + hashed))


def build_prepare_pipeline(pipeline: beam.Pipeline, plan: SourcePlan, settings: PrepareSettings, staging_dir: str) -> None:
    """Wires the prepare steps; every output lands in `staging_dir` for `publish` to move."""
    if plan.tfrecord_pattern is not None:
        items = (pipeline
                 | "TFRecordPattern" >> beam.Create([plan.tfrecord_pattern])
                 | "ReadTFRecords" >> ReadAllFromTFRecord(with_filename=True))
    else:
        items = (pipeline
                 | "ListSourceItems" >> beam.Create(plan.items)
                 | "SpreadOverWorkers" >> beam.Reshuffle())

    parsed = items | "ParseAnnotations" >> beam.ParDo(ParseAnnotations(plan.parse)).with_outputs(REJECTED, main="images")
    images = parsed.images

    if plan.class_names is not None:
        class_names = pipeline | "DeclaredClasses" >> beam.Create([tuple(plan.class_names)])
    else:
        class_names = (images
                       | "ClassNamesSeen" >> beam.FlatMap(lambda image: [o.class_name for o in image.objects])
                       | "DistinctClassNames" >> beam.Distinct()
                       | "CollectClassNames" >> beam.combiners.ToList()
                       | "SortClassNames" >> beam.Map(lambda names: tuple(sorted(names))))

    validated = images | "DecodeAndValidate" >> beam.ParDo(
        DecodeAndValidate(settings.val_fraction, settings.drop_emptied_images),
        beam.pvalue.AsSingleton(class_names),
    ).with_outputs(REJECTED, main="examples")
    examples = validated.examples

    splits = output_splits(plan, settings)
    by_split = (examples
                | "EncodeExamples" >> beam.Map(lambda image: (image.split, encode_example(image)))
                | "PartitionBySplit" >> beam.Partition(lambda keyed, _: splits.index(keyed[0]), len(splits)))
    for split, part in zip(splits, by_split):
        _ = (part
             | f"DropSplitKey[{split}]" >> beam.Values()
             | f"WriteShards[{split}]" >> WriteToTFRecord(
                 file_io.join(staging_dir, split),
                 file_name_suffix=".tfrecord",
                 num_shards=settings.shard_count(split),
                 shard_name_template="-SSSSS-of-NNNNN"))

    planned_rejections = pipeline | "PlanningRejections" >> beam.Create(list(plan.rejections))
    _ = ((parsed[REJECTED], validated[REJECTED], planned_rejections)
         | "AllRejections" >> beam.Flatten()
         | "RejectionToJson" >> beam.Map(lambda rejection: json.dumps(rejection.to_json_dict(), sort_keys=True))
         | "WriteRejections" >> beam.io.WriteToText(file_io.join(staging_dir, REJECTED_PARTS), shard_name_template=""))

    images_read = items | "CountImagesRead" >> beam.combiners.Count.Globally()
    boxes_read = (images
                  | "BoxesPerImage" >> beam.Map(lambda image: image.boxes_in_source)
                  | "CountBoxesRead" >> beam.CombineGlobally(sum))
    _ = (examples
         | "DatasetStatistics" >> beam.CombineGlobally(DatasetStatisticsFn())
         | "AddReadCounts" >> beam.Map(_summary,
                                       images_read=beam.pvalue.AsSingleton(images_read),
                                       boxes_read=beam.pvalue.AsSingleton(boxes_read),
                                       class_names=beam.pvalue.AsSingleton(class_names))
         | "SummaryToJson" >> beam.Map(json.dumps)
         | "WriteSummary" >> beam.io.WriteToText(file_io.join(staging_dir, SUMMARY_FILE), shard_name_template=""))


def _summary(statistics: dict, images_read: int, boxes_read: int, class_names: tuple[str, ...]) -> dict:
    return {"statistics": statistics, "images_read": images_read, "boxes_read": boxes_read,
            "class_names": list(class_names)}
