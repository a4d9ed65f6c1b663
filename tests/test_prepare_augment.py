"""`prepare --augment-copies K`: K augmented copies of every training image, none of validation
images, deterministic per (image id, copy index, seed), recorded in dataset_info.json."""

import numpy as np
import pytest
import tensorflow as tf

from boxflow.synth import ANNOTATIONS_FILE, SynthConfig, write_synth_dataset
from tests.builders import assert_accounting_closes, prepare, read_records


@pytest.fixture(scope="module")
def synth_annotations(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment")
    write_synth_dataset(str(root / "synth"), 30, SynthConfig(image_size=96, min_object_size=16, max_object_size=40),
                        seed=9)
    return root / "synth" / ANNOTATIONS_FILE


@pytest.mark.slow
def test_training_images_get_k_copies_and_validation_none(synth_annotations, tmp_path):
    info = prepare("coco", synth_annotations, tmp_path / "a", augment_copies=2, val_fraction=0.3, num_shards=2)
    assert_accounting_closes(info, 30)
    train, val = read_records(tmp_path / "a", "train"), read_records(tmp_path / "a", "val")
    originals = [r for r in train if "#aug" not in r["source_id"]]
    assert len(train) == 3 * len(originals) and not [r for r in val if "#aug" in r["source_id"]]
    assert info["accounting"]["augmented_images_written"] == 2 * len(originals)
    assert info["splits"]["train"]["augmented_images"] == 2 * len(originals)
    assert info["augmentation"]["copies_per_train_image"] == 2 and info["augmentation"]["recipe"]["flip_probability"]
    by_id = {r["source_id"]: r for r in train}
    changed = 0
    for original in originals:
        for copy in (1, 2):
            record = by_id[f"{original['source_id']}#aug{copy}"]
            image = tf.io.decode_image(record["encoded"]).numpy()
            assert image.shape == (96, 96, 3) == (record["height"], record["width"], 3)
            assert ((record["boxes"] >= 0) & (record["boxes"] <= 1)).all()
            assert set(record["classes"]) <= {"circle", "square", "triangle"}
            changed += not np.array_equal(image, tf.io.decode_image(original["encoded"]).numpy())
    assert changed == 2 * len(originals)

    again = prepare("coco", synth_annotations, tmp_path / "b", augment_copies=2, val_fraction=0.3, num_shards=2)
    assert again["accounting"] == info["accounting"]
    rerun = {r["source_id"]: r["encoded"] for r in read_records(tmp_path / "b", "train")}
    assert rerun == {r["source_id"]: r["encoded"] for r in train}

    other_seed = prepare("coco", synth_annotations, tmp_path / "c", augment_copies=2, augment_seed=1,
                         val_fraction=0.3, num_shards=2)
    assert other_seed["accounting"]["augmented_images_written"] == info["accounting"]["augmented_images_written"]
    differs = {r["source_id"]: r["encoded"] for r in read_records(tmp_path / "c", "train")}
    assert any(differs[k] != v for k, v in rerun.items() if "#aug" in k)


def test_copies_of_masked_images_move_each_mask_with_its_box(tmp_path):
    write_synth_dataset(str(tmp_path / "synth"), 12, SynthConfig(image_size=96, min_object_size=16, max_object_size=48,
                                                                 masks=True), seed=3)
    info = prepare("coco", tmp_path / "synth" / ANNOTATIONS_FILE, tmp_path / "data", augment_copies=2,
                   val_fraction=0.0)
    copies = [record for record in read_records(tmp_path / "data") if "#aug" in record["source_id"]]
    assert len(copies) == 24 and info["splits"]["train"]["masks"] == info["splits"]["train"]["boxes"]
    compared = 0
    for record in copies:
        assert len(record["masks"]) == len(record["boxes"])
        taken = np.zeros((96, 96), int)
        for mask, box in zip(record["masks"], record["boxes"]):
            ys, xs = np.nonzero(mask[..., 0])
            # The mask's extent is its (normalized) box, to the pixel the nearest-neighbour moves allow.
            np.testing.assert_allclose(box * 96, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), atol=1.5)
            taken += mask[..., 0]
            compared += 1
        assert taken.max() <= 1  # synth masks never share a pixel, nor do their copies
    assert compared > 20
