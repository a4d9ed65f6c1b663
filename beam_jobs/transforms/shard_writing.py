"""Validate, encode and write: each shard's images decoded, checked, encoded and written as one file.

Validation happens inside the shard's write, after the grouping, so that the image bytes stay in
the worker that reads them: they never cross to the runner, as they would through a shuffle of
encoded examples.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs import file_io
from beam_jobs.encode import encode_example
from beam_jobs.image_check import ImageProblem, check_image
from beam_jobs.offline_augment import augmented_copies
from beam_jobs.prepare_settings import PrepareSettings
from beam_jobs.source_records import Reason, SourceImage
from beam_jobs.split import TRAIN
from beam_jobs.tfrecord_file import TFRecordFileWriter
from beam_jobs.transforms import METRICS_NAMESPACE, REJECTED
from beam_jobs.validate import ValidationResult, image_level_problem, reject_image, validate_image
from contracts.record_schema import shard_name


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


class WriteShard(beam.DoFn):
    """Decodes, validates and encodes one shard's images and writes the shard file.

    Images are written in source-id order, so a rerun writes the same bytes. The file is written
    under a temporary name and renamed, so a retried bundle never leaves half a shard.
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


class WriteShards(beam.PTransform):
    """`((split, shard), [SourceImage])` → shard files in `staging_dir`, and `{"images":
    ValidatedImage written (augmented copies too), REJECTED: Rejection}`; `class_names` is the
    run's one class tuple (`ClassNames`)."""

    def __init__(self, staging_dir: str, settings: PrepareSettings, class_names: beam.PCollection):
        super().__init__()
        self._staging_dir, self._settings, self._class_names = staging_dir, settings, class_names

    def expand(self, shards: beam.PCollection) -> dict[str, beam.PCollection]:
        written = shards | "DecodeValidateWrite" >> beam.ParDo(
            WriteShard(self._staging_dir, self._settings), beam.pvalue.AsSingleton(self._class_names)
        ).with_outputs(REJECTED, main="images")
        return {"images": written.images, REJECTED: written[REJECTED]}
