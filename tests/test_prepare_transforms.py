"""Each step of the prepare pipeline as a composite PTransform, on Beam's TestPipeline with
`assert_that`: read, class names, split into shards, validate-encode-write, and the run's outputs."""

import json

import apache_beam as beam
import pytest
import tensorflow as tf
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.prepare_settings import PrepareSettings
from beam_jobs.source_records import AnnotationError, Reason, Rejection, SourceImage, SourceObject
from beam_jobs.sources.source_plan import SourcePlan
from beam_jobs.split import TRAIN, VAL
from beam_jobs.transforms import REJECTED
from beam_jobs.transforms.class_names import ClassNames
from beam_jobs.transforms.read_sources import ReadSourceImages
from beam_jobs.transforms.run_outputs import REJECTED_PARTS, SUMMARY_FILE, WriteRejections, WriteSummary
from beam_jobs.transforms.shard_assignment import GroupByShard, shard_key
from beam_jobs.transforms.shard_writing import WriteShards
from tests.builders import image_bytes


def beam_test_pipeline() -> BeamTestPipeline:
    # The runner DirectRunner ends up using, without its first (offline: slow) attempt at Prism.
    return BeamTestPipeline(runner=fn_runner.FnApiRunner())


def source(source_id: str, classes=("cat",), split=None, path=None, encoded=None) -> SourceImage:
    objects = tuple(SourceObject(name, (4.0, 4.0, 20.0, 20.0)) for name in classes)
    return SourceImage(source=f"{source_id}.json", source_id=source_id, filename=f"{source_id}.jpg", objects=objects,
                       image_path=path, encoded=encoded, split=split)


def parse_name(name: str) -> SourceImage:
    """A source's parse: an image per name, except names that do not parse."""
    if name.startswith("bad"):
        raise AnnotationError(f"{name}.json", "no 'bbox' field")
    return source(name)


def test_read_parses_every_item_and_rejects_what_does_not_parse():
    planned = Rejection("annotations.json", Reason.ANNOTATION_MALFORMED, "annotation 7 names no image")
    plan = SourcePlan("test", "in", parse_name, items=("a", "bad1", "b"), rejections=(planned,))
    with beam_test_pipeline() as pipeline:
        read = pipeline | ReadSourceImages(plan)
        assert_that(read["images"] | beam.Map(lambda image: image.source_id), equal_to(["a", "b"]), label="Images")
        assert_that(read[REJECTED] | beam.Map(lambda rejection: (rejection.source, rejection.reason)),
                    equal_to([("bad1.json", Reason.ANNOTATION_MALFORMED),
                              ("annotations.json", Reason.ANNOTATION_MALFORMED)]), label="Rejected")
        assert_that(read["images_read"], equal_to([3]), label="Read")


@pytest.mark.parametrize("declared, expected", [(("zebra", "ant"), ("zebra", "ant")), (None, ("ant", "cat", "dog"))])
def test_the_classes_are_the_declared_ones_or_those_seen_sorted(declared, expected):
    with beam_test_pipeline() as pipeline:
        images = pipeline | beam.Create([source("a", ("dog", "cat")), source("b", ("cat", "ant"))])
        assert_that(images | ClassNames(declared), equal_to([expected]))


def test_every_image_lands_in_one_shard_of_its_split():
    settings = PrepareSettings("coco", "in", "out", val_fraction=0.5, num_shards=4)
    sources = [source(f"image-{index}") for index in range(30)] + [source("own", split="test")]
    expected = {}
    for image in sources:
        expected.setdefault(shard_key(image, settings), []).append(image.source_id)
    assert {split for split, _ in expected} == {TRAIN, VAL, "test"}  # the source's own split is kept
    with beam_test_pipeline() as pipeline:
        shards = pipeline | beam.Create(sources) | GroupByShard(settings)
        assert_that(shards | beam.MapTuple(lambda key, images: (key, sorted(image.source_id for image in images))),
                    equal_to([(key, sorted(ids)) for key, ids in expected.items()]))


def test_each_shard_is_validated_encoded_and_written_and_its_rejections_come_out(tmp_path):
    settings = PrepareSettings("coco", "in", str(tmp_path), num_shards=1, val_fraction=0.0)
    good = source("good", ("cat", "owl"), encoded=image_bytes(32, 24))
    missing = source("missing", path=str(tmp_path / "nowhere.jpg"))
    with beam_test_pipeline() as pipeline:
        class_names = pipeline | "Classes" >> beam.Create([("cat",)])
        written = (pipeline | beam.Create([((TRAIN, 0), [good, missing])])
                   | WriteShards(str(tmp_path), settings, class_names))
        assert_that(written["images"] | beam.Map(lambda image: (image.source_id, len(image.objects), image.width)),
                    equal_to([("good", 1, 32)]), label="Written")
        assert_that(written[REJECTED] | beam.Map(lambda rejection: (rejection.source, rejection.reason)),
                    equal_to([("good.json#box 1", Reason.CLASS_UNKNOWN), ("missing.json", Reason.IMAGE_MISSING)]),
                    label="Rejected")
    shard = tmp_path / "train-00000-of-00001.tfrecord"
    assert sum(1 for _ in tf.data.TFRecordDataset(str(shard))) == 1
    assert not list(tmp_path.glob("*.partial-*"))  # written under a temporary name, then renamed


def test_the_run_writes_its_rejections_and_its_summary(tmp_path):
    settings = PrepareSettings("coco", "in", str(tmp_path), num_shards=1, val_fraction=0.0)
    with beam_test_pipeline() as pipeline:
        sources = pipeline | "Sources" >> beam.Create([source("good", ("cat", "cat"), encoded=image_bytes(32, 24))])
        class_names = pipeline | "Classes" >> beam.Create([("cat",)])
        written = (sources | GroupByShard(settings) | WriteShards(str(tmp_path), settings, class_names))
        _ = pipeline | "Rejections" >> beam.Create([Rejection("x.json", Reason.IMAGE_CORRUPT, "truncated")]) \
            | WriteRejections(str(tmp_path))
        _ = written["images"] | WriteSummary(str(tmp_path), pipeline | "Read" >> beam.Create([3]), sources, class_names)
    lines = (tmp_path / REJECTED_PARTS).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"source": "x.json", "level": "image", "reason": "image_corrupt",
                                                     "kept": False, "detail": "truncated", "boxes_lost": 0}]
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert (summary["images_read"], summary["boxes_read"], summary["class_names"]) == (3, 2, ["cat"])
    assert summary["statistics"]["splits"][TRAIN]["images"] == 1
