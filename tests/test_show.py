"""`boxflow show` writes a grid PNG whose boxes are drawn where the objects are."""

import numpy as np
from PIL import Image

from boxflow.cli import main
from pipeline.dataset import make_dataset
from pipeline.drawing import PALETTE
from pipeline.show import GAP
from tests.builders import prepared_synth


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


def test_show_refuses_a_folder_that_is_not_a_dataset(tmp_path, capsys):
    assert main(["show", "--data", str(tmp_path), "--out", str(tmp_path / "g.png")]) == 2
    assert "is it a prepared dataset?" in capsys.readouterr().err
