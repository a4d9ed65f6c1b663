"""The `boxflow prepare` Beam pipeline: parse → assign shard → decode, validate, encode, write.

Each step is a pure function (in `sources/`, `image_check`, `validate`, `encode`)
wrapped by a DoFn here; `build_prepare_pipeline` only wires them and the I/O.
Everything rejected leaves through a `rejected` side output and is counted with
Beam metrics under the `boxflow` namespace.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import ReadAllFromTFRecord
from apache_beam.metrics import Metrics

from beam_jobs import file_io
from beam_jobs.encode import encode_example
from beam_jobs.image_check import ImageProblem, check_image
from beam_jobs.offline_augment import augmented_copies
from beam_jobs.prepare_settings import PrepareSettings
from beam_jobs.source_records import AnnotationError, Reason, Rejection, SourceImage
from beam_jobs.sources.source_plan import SourcePlan, already_parsed
from beam_jobs.split import TRAIN, VAL, hash_shard, hash_split
from beam_jobs.statistics import DatasetStatisticsFn
from beam_jobs.tfrecord_file import TFRecordFileWriter
from beam_jobs.validate import ValidationResult, image_level_problem, reject_image, validate_image
from boxflow.record_schema import shard_name

REJECTED = "rejected"
METRICS_NAMESPACE = "boxflow"
SUMMARY_FILE = "summary.json"
REJECTED_PARTS = "rejected.jsonl"


class ParseAnnotations(beam.DoFn):
    """A work item (path, record, parsed entry) → `SourceImage`, or an ANNOTATION_MALFORMED rejection."""

    def __init__(self, parse: Callable[[Any], SourceImage]):
        self._parse = parse
        self._images_read = Metrics.counter(METRICS_NAMESPACE, "images_read")
        self._malformed = Metrics.counter(METRICS_NAMESPACE, f"image_{Reason.ANNOTATION_MALFORMED.value}")

    def process(self, item: Any) -> Iterator[Any]:
        self._images_read.inc()
        try:
            yield self._parse(item)
        except AnnotationError as error:
            self._malformed.inc()
            yield beam.pvalue.TaggedOutput(REJECTED, Rejection(error.source, Reason.ANNOTATION_MALFORMED, error.detail))


def load_and_validate(source: SourceImage, class_ids: dict[str, int], split: str,
                      drop_emptied_images: bool) -> ValidationResult:
    """Reads `source`'s image (file or inline bytes), decodes it fully and validates its boxes."""
    unusable = image_level_problem(source)
    if unusable is not None:
        return unusable
    data = source.encoded
    if data is None:
        if not source.image_path:
            return reject_image(source, Reason.IMAGE_MISSING, "the annotation names no image file")
        try:
            data = file_io.read_bytes(source.image_path)
        except Exception as error:  # local OSErrors, or the remote filesystems' BeamIOError
            if not file_io.exists(source.image_path):
                return reject_image(source, Reason.IMAGE_MISSING, f"no image file at {source.image_path}")
            return reject_image(source, Reason.IMAGE_UNREADABLE, f"cannot read {source.image_path}: {error}")
    try:
        checked = check_image(data)
    except ImageProblem as problem:
        return reject_image(source, problem.reason, problem.detail)
    return validate_image(source, checked, class_ids, split, drop_emptied_images)


class AssignShard(beam.DoFn):
    """Keys each `SourceImage` by `(split, shard index)`, from stable hashes of its id."""

    def __init__(self, settings: PrepareSettings):
        self._settings = settings

    def process(self, source: SourceImage) -> Iterator[tuple[tuple[str, int], SourceImage]]:
        split = source.split or hash_split(source.source_id, self._settings.val_fraction)
        yield (split, hash_shard(source.source_id, self._settings.shard_count(split))), source


class WriteShard(beam.DoFn):
    """Decodes, validates and encodes one shard's images and writes the shard file.

    Grouping the small `SourceImage`s by shard before decoding keeps the image bytes
    inside the worker that reads them: they never cross to the runner, as they would
    through a shuffle of encoded examples. Images are written in source-id order, so
    a rerun writes the same bytes. The file is written under a temporary name and
    renamed, so a retried bundle never leaves half a shard.
    """

    def __init__(self, staging_dir: str, settings: PrepareSettings):
        self._staging_dir = staging_dir
        self._settings = settings
        self._class_names: tuple[str, ...] = ()
        self._class_ids: dict[str, int] = {}
        self._counters: dict[str, Any] = {}

    def _count(self, name: str) -> None:
        if name not in self._counters:
            self._counters[name] = Metrics.counter(METRICS_NAMESPACE, name)
        self._counters[name].inc()

    def process(self, keyed: tuple[tuple[str, int], Any], class_names: tuple[str, ...]) -> Iterator[Any]:
        (split, index), sources = keyed
        if class_names != self._class_names:
            self._class_names = class_names
            self._class_ids = {name: label for label, name in enumerate(class_names, start=1)}
        name = shard_name(split, index, self._settings.shard_count(split))
        partial = file_io.join(self._staging_dir, f"{name}.partial-{uuid.uuid4().hex[:8]}")
        with TFRecordFileWriter(partial) as writer:
            for source in sorted(sources, key=lambda s: (s.source_id, s.source)):
                result = load_and_validate(source, self._class_ids, split, self._settings.drop_emptied_images)
                for rejection in result.rejections:
                    self._count(f"{rejection.level.value}_{rejection.reason.value}")
                    yield beam.pvalue.TaggedOutput(REJECTED, rejection)
                if result.image is None:
                    continue
                self._count("images_written")
                variants = [result.image]
                if split == TRAIN and self._settings.augment_copies:
                    variants += augmented_copies(result.image, self._settings.augment_copies,
                                                 self._settings.augment_seed, self._settings.augmentation)
                for variant in variants:
                    writer.write(encode_example(variant))
                    yield variant
        FileSystems.rename([partial], [file_io.join(self._staging_dir, name)])


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
        # Items whose parse reads files are spread over the workers first; items parsed
        # while planning go straight on to the shard grouping, which spreads them anyway.
        items = pipeline | "ListSourceItems" >> beam.Create(plan.items, reshuffle=plan.parse is not already_parsed)

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

    written = (images
               | "AssignShards" >> beam.ParDo(AssignShard(settings))
               | "GroupByShard" >> beam.GroupByKey()
               | "DecodeValidateWriteShards" >> beam.ParDo(WriteShard(staging_dir, settings),
                                                           beam.pvalue.AsSingleton(class_names))
               .with_outputs(REJECTED, main="images"))

    planned_rejections = pipeline | "PlanningRejections" >> beam.Create(list(plan.rejections))
    _ = ((parsed[REJECTED], written[REJECTED], planned_rejections)
         | "AllRejections" >> beam.Flatten()
         | "RejectionToJson" >> beam.Map(lambda rejection: json.dumps(rejection.to_json_dict(), sort_keys=True))
         | "WriteRejections" >> beam.io.WriteToText(file_io.join(staging_dir, REJECTED_PARTS), shard_name_template=""))

    images_read = items | "CountImagesRead" >> beam.combiners.Count.Globally()
    boxes_read = (images
                  | "BoxesPerImage" >> beam.Map(lambda image: image.boxes_in_source)
                  | "CountBoxesRead" >> beam.CombineGlobally(sum))
    _ = (written.images
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
