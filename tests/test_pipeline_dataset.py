"""tf.data input: record decoding, letterbox, ragged/padded batches, determinism, sharding."""

import numpy as np
import pytest
import tensorflow as tf

from contracts.errors import BoxflowError
from pipeline.augment.config import AugmentationConfig
from pipeline.dataset import IMAGE_VALID, make_dataset, most_boxes_per_image, read_dataset_info, shard_files
from pipeline.input_shards import auto_shard_policy, full_batch_steps, records_per_pipeline
from pipeline.letterbox import letterbox
from pipeline.ragged_padding import TOO_MANY_BOXES, padded_box_count, padded_to_ragged, ragged_to_padded
from contracts.record_schema import IS_CROWD
from pipeline.record_decoding import CROWD_CLASS, decode_record
from tests.builders import make_example, prepare, prepared_synth, read_records
from tests.conftest import shared_dataset


def test_decode_record_gives_pixel_boxes_and_classes_from_zero():
    decoded = decode_record(tf.constant(make_example(48, 64, [(8, 4, 40, 30), (0, 0, 64, 48)], labels=[3, 1])))
    assert decoded["image"].shape == (48, 64, 3) and decoded["image"].dtype == tf.uint8
    np.testing.assert_allclose(decoded["boxes"].numpy(), [[8, 4, 40, 30], [0, 0, 64, 48]], atol=1e-4)
    assert decoded["classes"].numpy().tolist() == [2, 0]


def test_decode_record_without_boxes_and_grayscale_png():
    decoded = decode_record(tf.constant(make_example(20, 30, [], mode="L", image_format="PNG")))
    assert decoded["image"].shape == (20, 30, 3)
    assert decoded["boxes"].shape == (0, 4) and decoded["classes"].shape == (0,)


def test_letterbox_moves_boxes_with_the_pixels():
    image = np.zeros((50, 100, 3), np.uint8)
    image[5:25, 10:30] = 255  # an object whose box is (10, 5, 30, 25)
    resized, boxes, scale = letterbox(tf.constant(image), tf.constant([[10.0, 5.0, 30.0, 25.0]]), 200)
    assert float(scale) == 2.0 and resized.shape == (200, 200, 3)
    np.testing.assert_allclose(boxes.numpy(), [[20, 10, 60, 50]])
    bright = np.argwhere(resized.numpy()[..., 0] > 128)
    assert bright.min(axis=0).tolist() == [10, 20] and (bright.max(axis=0) + 1).tolist() == [50, 60]
    assert resized.numpy()[100:].max() == 0  # padding below the 100-row image


def test_crowd_regions_decode_as_the_crowd_class_and_missing_flags_as_none():
    serialized = make_example(48, 64, [(8, 4, 40, 30), (0, 0, 64, 48)], labels=[3, 1], is_crowd=[False, True])
    assert decode_record(tf.constant(serialized))["classes"].numpy().tolist() == [2, CROWD_CLASS]
    example = tf.train.Example.FromString(serialized)
    del example.features.feature[IS_CROWD]  # a writer that leaves the optional flags out
    assert decode_record(tf.constant(example.SerializeToString()))["classes"].numpy().tolist() == [2, 0]


def test_ragged_and_padded_forms_round_trip():
    boxes = tf.ragged.constant([[[1.0, 2, 3, 4], [5, 6, 7, 8]], [], [[0.5, 0.5, 1, 1]]], ragged_rank=1)
    classes = tf.ragged.constant([[0, 2], [], [1]])
    dense_boxes, dense_classes = ragged_to_padded(boxes, classes, max_boxes=4)
    assert dense_boxes.shape == (3, 4, 4) and dense_classes.numpy()[1].tolist() == [-1, -1, -1, -1]
    back_boxes, back_classes = padded_to_ragged(dense_boxes, dense_classes)
    assert back_boxes.to_list() == boxes.to_list() and back_classes.to_list() == classes.to_list()


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    return prepared_synth(tmp_path_factory.mktemp("pipeline"), 48, 96, (8, 32), seed=4, num_shards=4,
                          val_fraction=0.25)


def test_batches_hold_ragged_boxes_matching_the_records(synth_data):
    dataset = make_dataset(str(synth_data), "val", image_size=48, batch_size=5, training=False, deterministic=True)
    images, targets = next(iter(dataset))
    assert images.shape == (5, 48, 48, 3) and images.dtype == tf.float32
    assert isinstance(targets["boxes"], tf.RaggedTensor) and targets["boxes"].shape.as_list() == [5, None, 4]
    # The val records, read in shard order, in pixels of the 48 px letterboxed image (scale 0.5).
    expected = read_records(synth_data, "val")[:5]
    for row, record in enumerate(expected):
        np.testing.assert_allclose(targets["boxes"][row].numpy(), record["boxes"] * 48, atol=1e-4)
        assert targets["classes"][row].numpy().tolist() == [label - 1 for label in record["labels"]]
    total = sum(int(images.shape[0]) for images, _ in dataset)
    assert total == len(read_records(synth_data, "val"))


def test_images_without_boxes_batch_with_the_rest(synth_data):
    counts = [n for _, targets in make_dataset(str(synth_data), "train", 48, 8, training=False)
              for n in targets["boxes"].row_lengths().numpy().tolist()]
    assert 0 in counts and len(counts) == len(read_records(synth_data, "train"))


def test_no_stream_is_autotuned(synth_data):
    # Deleting an autotuned iterator made `fit` wait 28-50 s, each epoch for the validation stream
    # and at the end of the run for the training stream.
    assert not make_dataset(str(synth_data), "train", 48, 4, training=True).options().autotune.enabled
    assert not make_dataset(str(synth_data), "val", 48, 4, training=False).options().autotune.enabled
    assert not make_dataset(str(synth_data), "val", 48, 4, training=False, full_batches=True,
                            padded_max_boxes=8).options().autotune.enabled


def test_deterministic_training_order_reproduces_bit_for_bit(synth_data):
    def run(augmentation=None):
        dataset = make_dataset(str(synth_data), "train", 48, 4, training=True, seed=7, deterministic=True,
                               augmentation=augmentation)
        return [(images.numpy(), targets["boxes"].flat_values.numpy()) for images, targets in dataset]

    first, second = run(), run()
    assert len(first) == len(read_records(synth_data, "train")) // 4
    for (a_images, a_boxes), (b_images, b_boxes) in zip(first, second):
        assert np.array_equal(a_images, b_images) and np.array_equal(a_boxes, b_boxes)
    # With every augmentation on, mosaic included, too.
    config = AugmentationConfig(rotate90_probability=0.5, jpeg_probability=0.5, cutout_probability=0.5,
                                mosaic_probability=0.5)
    first, second = run(config), run(config)
    assert first and len(first) == len(second)
    for (a_images, a_boxes), (b_images, b_boxes) in zip(first, second):
        assert np.array_equal(a_images, b_images) and np.array_equal(a_boxes, b_boxes)


def test_an_image_of_more_boxes_than_the_padding_stops_the_input_instead_of_losing_boxes():
    boxes = tf.ragged.constant([[[1.0, 2, 3, 4]] * 5, [[0.5, 0.5, 1, 1]]], ragged_rank=1)
    classes = tf.ragged.constant([[0] * 5, [1]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=TOO_MANY_BOXES):
        ragged_to_padded(boxes, classes, max_boxes=4)
    assert [padded_box_count(boxes) for boxes in (0, 8, 9, 150)] == [8, 8, 16, 152]


def test_the_most_boxes_in_one_image_come_from_prepare_or_from_the_records(synth_data):
    info = read_dataset_info(str(synth_data))
    longest = max(len(record["boxes"]) for record in read_records(synth_data) if record["split"] in ("train", "val"))
    assert most_boxes_per_image(str(synth_data), info) == longest > 1
    for split in info["splits"].values():  # as a dataset prepared before prepare counted them
        del split["max_boxes_per_image"]
    assert most_boxes_per_image(str(synth_data), info) == longest


def test_full_batches_fill_up_the_last_one_with_blank_images_and_lose_none(synth_data):
    plain = list(make_dataset(str(synth_data), "val", 48, 5, training=False, deterministic=True))
    full = list(make_dataset(str(synth_data), "val", 48, 5, training=False, deterministic=True, full_batches=True,
                             padded_max_boxes=16))
    real = sum(int(images.shape[0]) for images, _ in plain)
    assert real % 5, "the split must leave a last, smaller batch"
    assert all(images.shape == (5, 48, 48, 3) for images, _ in full)
    assert sum(int(tf.reduce_sum(targets[IMAGE_VALID])) for _, targets in full) == real
    last_images, last_targets = full[-1]
    blank = last_targets[IMAGE_VALID].numpy() == 0
    assert not last_images.numpy()[blank].any() and (last_targets["classes"].numpy()[blank] == -1).all()
    for (images, targets), (full_images, full_targets) in zip(plain, full):
        kept = full_targets[IMAGE_VALID].numpy() > 0
        np.testing.assert_array_equal(full_images.numpy()[kept], images.numpy())
        boxes, _ = padded_to_ragged(full_targets["boxes"], full_targets["classes"])
        assert [row for row, valid in zip(boxes.to_list(), kept) if valid] == targets["boxes"].to_list()


def test_padded_batches_round_trip_to_the_ragged_ones(synth_data):
    ragged = make_dataset(str(synth_data), "train", 48, 4, training=False, deterministic=True)
    padded = make_dataset(str(synth_data), "train", 48, 4, training=False, deterministic=True, padded_max_boxes=6)
    for (_, r), (_, p) in zip(ragged, padded):
        assert p["boxes"].shape[1:] == (6, 4) and p["classes"].shape[1:] == (6,)
        boxes, classes = padded_to_ragged(p["boxes"], p["classes"])
        assert boxes.to_list() == r["boxes"].to_list() and classes.to_list() == r["classes"].to_list()


def test_input_pipelines_split_the_data_without_overlap(synth_data):
    def fingerprints(context=None):
        global_batch = context.num_replicas_in_sync if context else 1  # one image per replica
        dataset = make_dataset(str(synth_data), "train", 48, global_batch, training=False, deterministic=True,
                               input_context=context)
        return sorted(round(float(image.numpy().sum()), 1) for images, _ in dataset for image in images)

    everything = fingerprints()
    for pipelines in (2, 8):  # 4 train shards: FILE sharding for 2 pipelines, DATA sharding for 8
        parts = [fingerprints(tf.distribute.InputContext(pipelines, index, pipelines)) for index in range(pipelines)]
        assert sorted(sum(parts, [])) == everything
    assert auto_shard_policy(4, 2) == tf.data.experimental.AutoShardPolicy.FILE
    assert auto_shard_policy(4, 8) == tf.data.experimental.AutoShardPolicy.DATA


def test_every_input_pipeline_fills_up_to_the_same_steps_and_no_image_is_lost(synth_data):
    """Validation as workers read it: 3 pipelines shard the 4 train shards by file, 6 by record;
    each runs the same number of full batches of 3, and their real images are the split's, once."""
    def fingerprints(batches):
        return [round(float(image.numpy().sum()), 1) for images, targets in batches
                for image, valid in zip(images, targets[IMAGE_VALID]) if valid > 0]

    images = read_dataset_info(str(synth_data))["splits"]["train"]["images"]
    everything = sorted(fingerprints(make_dataset(str(synth_data), "train", 48, 3, training=False, full_batches=True)))
    for pipelines in (3, 6):
        counts = records_per_pipeline(shard_files(str(synth_data), "train"), pipelines, images)
        steps = full_batch_steps(counts, 3)
        assert sum(counts) == images and len(set(counts)) > 1, counts  # unequal shares to fill up
        seen = []
        for index in range(pipelines):
            batches = list(make_dataset(str(synth_data), "train", 48, 3 * pipelines, training=False,
                                        full_batches=True, batch_count=steps, padded_max_boxes=16,
                                        input_context=tf.distribute.InputContext(pipelines, index, pipelines)))
            assert len(batches) == steps and {tuple(images.shape) for images, _ in batches} == {(3, 48, 48, 3)}
            real = fingerprints(batches)
            assert len(real) == counts[index]
            seen += real
        assert sorted(seen) == everything


def test_incomplete_dataset_is_refused(tmp_path):
    with pytest.raises(BoxflowError, match="not a complete prepared dataset"):
        make_dataset(str(tmp_path), "train", 32, 2, training=False)


@pytest.mark.parametrize("name, args", [
    ("raccoon", lambda root: ("voc", root / "annotations", {"images_dir": str(root / "images")})),
    ("bccd", lambda root: ("voc", root / "BCCD", {})),
])
def test_real_datasets_stream_end_to_end(name, args, tmp_path):
    source_format, input_path, extra = args(shared_dataset(name))
    info = prepare(source_format, input_path, tmp_path, **extra)
    for split, stats in info["splits"].items():
        seen = boxes = 0
        for images, targets in make_dataset(str(tmp_path), split, 128, 16, training=False):
            assert images.shape[1:] == (128, 128, 3)
            assert float(tf.reduce_max(targets["boxes"].flat_values)) <= 128.0 + 1e-3
            seen += int(images.shape[0])
            boxes += int(targets["boxes"].flat_values.shape[0])
        assert (seen, boxes) == (stats["images"], stats["boxes"])


def test_jpeg_shrinks_in_the_dct_domain_and_boxes_follow():
    serialized = tf.constant(make_example(480, 640, [(64, 48, 320, 240)]))
    full = decode_record(serialized)
    shrunk = decode_record(serialized, shrink_for=200)  # 1/2 keeps 320 ≥ 200; 1/4 would give 160
    assert shrunk["image"].shape == (240, 320, 3)
    np.testing.assert_allclose(shrunk["boxes"].numpy(), full["boxes"].numpy() / 2, atol=1e-4)
    assert decode_record(serialized, shrink_for=1000)["image"].shape == (480, 640, 3)
    png = tf.constant(make_example(48, 64, [(1, 2, 3, 4)], image_format="PNG"))
    assert decode_record(png, shrink_for=8)["image"].shape == (48, 64, 3)
