"""`boxflow show` writes a grid PNG whose boxes are drawn where the objects are."""

import numpy as np
from PIL import Image

from boxflow.cli import main
from pipeline.dataset import make_dataset
from pipeline.drawing import MASK_OPACITY, PALETTE
from pipeline.show import GAP
from tests.builders import prepare, prepared_synth


def test_show_draws_each_box_in_its_class_colour(tmp_path):
    prepared_synth(tmp_path, 12, 96, (16, 40), seed=2, num_shards=2, val_fraction=0.0)
    out = tmp_path / "grid.png"
    assert main(["show", "--data", str(tmp_path / "data"), "--count", "4", "--image-size", "96",
                 "--out", str(out)]) == 0
    picture = np.asarray(Image.open(out).convert("RGB"))
    assert picture.shape == (2 * 96 + GAP, 2 * 96 + GAP, 3)

    dataset = make_dataset(str(tmp_path / "data"), "train", 96, 1, training=False, deterministic=True)
    drawn = 0
    for index, (_, targets) in enumerate(dataset.take(4)):
        row, column = divmod(index, 2)
        tile = picture[row * (96 + GAP):row * (96 + GAP) + 96, column * (96 + GAP):column * (96 + GAP) + 96]
        for box, label in zip(targets["boxes"][0].numpy(), targets["classes"][0].numpy()):
            left, top, right, bottom = np.round(box).astype(int)
            # The bottom edge (the class name is written along the top) is in the class colour.
            y = min(bottom - 1, 95)
            edge = tile[y, left + 1:right - 1]
            assert (edge == PALETTE[label]).all(axis=-1).mean() > 0.8, (index, box)
            drawn += 1
    assert drawn > 0


def test_show_fills_each_mask_in_its_class_colour(tmp_path):
    data = prepared_synth(tmp_path, 8, 96, (24, 40), seed=3, val_fraction=0.0, masks=True)
    out = tmp_path / "grid.png"
    assert main(["show", "--data", str(data), "--count", "1", "--image-size", "96", "--out", str(out)]) == 0
    picture = np.asarray(Image.open(out).convert("RGB")).astype(int)
    images, targets = next(iter(make_dataset(str(data), "train", 96, 1, training=False, deterministic=True,
                                             with_masks=True)))
    image, instances = images[0].numpy(), targets["instance_map"][0].numpy()
    boxes = np.round(targets["boxes"][0].numpy()).astype(int)
    # Where no box outline or label tab is drawn: 3 px from each edge, and about the tab's rows.
    clear = np.ones((96, 96), bool)
    for left, top, right, bottom in boxes:
        clear[max(top - 18, 0):top + 18, max(left - 3, 0):left + 70] = False
        for edge in (left, right):
            clear[max(top - 3, 0):bottom + 3, max(edge - 3, 0):edge + 3] = False
        for edge in (top, bottom):
            clear[max(edge - 3, 0):edge + 3, max(left - 3, 0):right + 3] = False
    checked = 0
    for index, label in enumerate(targets["classes"][0].numpy()):
        inside = (instances == index + 1) & clear
        expected = np.round(image[inside] + (np.array(PALETTE[label]) - image[inside]) * MASK_OPACITY / 255)
        assert (np.abs(picture[:96, :96][inside] - expected) <= 2).all(), index
        checked += int(inside.sum())
    background = (instances == 0) & clear
    assert (np.abs(picture[:96, :96][background] - image[background]) <= 2).all()
    assert checked > 100


def test_show_tints_per_pixel_labels_under_the_masks(tmp_path):
    from boxflow.synth import SynthConfig, write_synth_dataset
    from pipeline.drawing import LABEL_OPACITY

    config = SynthConfig(image_size=96, min_object_size=16, max_object_size=32, max_objects=1, masks=True, stuff=True)
    write_synth_dataset(str(tmp_path / "raw"), 4, config, seed=2)
    prepare("coco_panoptic", tmp_path / "raw" / "panoptic.json", tmp_path / "data", val_fraction=0.0)
    out = tmp_path / "grid.png"
    assert main(["show", "--data", str(tmp_path / "data"), "--count", "1", "--image-size", "96", "--out",
                 str(out)]) == 0
    picture = np.asarray(Image.open(out).convert("RGB")).astype(int)[:96, :96]
    images, targets = next(iter(make_dataset(str(tmp_path / "data"), "train", 96, 1, training=False,
                                             deterministic=True, with_semantic=True)))
    image, labels = images[0].numpy(), targets["class_map"][0].numpy()
    stuff = labels > 3  # sky, ground, water, away from the box, its outline and its label's tab
    for left, top, right, bottom in np.round(targets["boxes"][0].numpy()).astype(int):
        stuff[max(top - 24, 0):bottom + 4, max(left - 4, 0):max(right, left + 70) + 4] = False
    expected = np.round(image + (np.array(PALETTE)[(labels - 1) % len(PALETTE)] - image) * LABEL_OPACITY / 255)
    assert stuff.sum() > 500 and (np.abs(picture[stuff] - expected[stuff]) <= 2).all()


def test_show_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    assert main(["show", "--data", str(tmp_path), "--out", str(tmp_path / "g.png")]) == 2
    assert "is it a prepared dataset?" in capsys.readouterr().err
