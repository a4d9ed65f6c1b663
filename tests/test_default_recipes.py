"""What a user gets by naming one flag and nothing else learns: LARS and LAMB at their own default
rates, bfloat16 and group normalization. Each run: 160 synthetic images at 128 px, batch 8, 3
epochs (bfloat16 2: on a CPU without bfloat16 instructions its steps cost five times float32's),
through `boxflow train`; the last epoch's loss must be at least 20% below the first's.

Measured (first epoch → last): LARS 3.75 → 2.74 (−27%; after 2 epochs of 2 only −19%), LAMB
4.06 → 2.56 (−37%), group norm 3.49 → 2.48 (−29%), bfloat16 in 2 epochs 3.96 → 2.89 (−27%; in 3,
−35%); at AdamW's rate, which they used to get, LARS and LAMB fell by 0.5% and 4%."""

import json

import pytest

from boxflow.cli import main
from tests.builders import prepared_synth

REQUIRED_FALL = 0.2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return prepared_synth(tmp_path_factory.mktemp("recipes"), 200, 128, (16, 48), seed=3, num_shards=2,
                          val_fraction=0.2)


@pytest.mark.parametrize("flags, epochs, announced", [
    (["--optimizer", "lars"], 3, "lars at peak rate 0.5 (1 at 16 images, linear scaling) from lars's defaults"),
    (["--optimizer", "lamb"], 3, "lamb at peak rate 0.00707107 (0.01 at 16 images, sqrt scaling) from lamb's defaults"),
    (["--bfloat16"], 2, "mixed_bfloat16, adamw at peak rate 0.001 from adamw's defaults"),
    (["--norm", "group"], 3, "group norm, float32, adamw at peak rate 0.001"),
], ids=["lars", "lamb", "bfloat16", "group_norm"])
def test_one_flag_alone_trains(data_dir, tmp_path, capsys, flags, epochs, announced):
    run = tmp_path / "run"
    assert main(["train", "--data", str(data_dir), "--out", str(run), "--image-size", "128", "--epochs", str(epochs),
                 "--batch-size", "8", "--eval-every", "0", *flags]) == 0
    assert announced in capsys.readouterr().err
    losses = [entry["loss"] for entry in json.loads((run / "history.json").read_text())]
    assert losses[-1] <= (1 - REQUIRED_FALL) * losses[0], losses
