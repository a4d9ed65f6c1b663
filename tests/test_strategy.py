"""Distribution strategies: the choice for `--strategy`, and MirroredStrategy over 2 logical CPU
devices training exactly like one device for the same global batch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from contracts.errors import BoxflowError
from keras_models.training.schedule import WarmupCosine
from keras_models.training.strategy import choose_strategy, workers_in_tf_config
from tests.builders import prepared_crowd, prepared_synth


def test_strategy_names_and_tf_config(monkeypatch):
    with pytest.raises(BoxflowError, match="strategy must be one of"):
        choose_strategy("parameter_server")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert workers_in_tf_config() == 2
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(BoxflowError, match="TF_CONFIG is not valid JSON"):
        workers_in_tf_config()
    monkeypatch.delenv("TF_CONFIG")
    assert choose_strategy("auto").num_replicas_in_sync == 1


def test_warmup_then_cosine():
    schedule = WarmupCosine(peak=0.1, total_steps=110, warmup_steps=10, final_fraction=0.1)
    values = [float(schedule(step)) for step in (0, 5, 10, 60, 110, 500)]
    np.testing.assert_allclose(values, [0.0, 0.05, 0.1, 0.055, 0.01, 0.01], rtol=1e-5, atol=1e-7)
    assert WarmupCosine(**schedule.get_config()).get_config() == schedule.get_config()


@pytest.fixture(scope="module")
def equivalence_data(tmp_path_factory):
    return prepared_synth(tmp_path_factory.mktemp("mirrored"), 24, 128, (16, 48), seed=6, masks=True,
                          num_shards=2, val_fraction=0.0)


# The tiny RetinaNet compares in float32, as users train. The two-stage detector compares in float64:
# its untrained RPN ranks proposals whose scores differ by rounding, so in float32 the difference is
# 0.8% of the change, 1e-7 in float64 (measured on Faster R-CNN; the helper runs TensorFlow's
# deterministic kernels, without them it ranged from 1e-7 to 1.3%). Mask R-CNN stands for Faster
# R-CNN, whose every stage it runs, and adds its mask stage. Per-replica BatchNorm, the control that
# shows the comparison can fail, trains RetinaNet only: both models' backbones hold the same layer,
# and Mask R-CNN's control was a third Mask R-CNN training. The Keras Applications backbones reach
# the same synchronized layer (every one of their normalization layers is the chosen one:
# tests/test_normalization.py); MobileNetV2's run here, in float64, cost 60 s of the suite's time.
EQUIVALENCE_CONFIGS = ("retinanet:tiny:float32", "mask_rcnn:tiny:float64")
CONTROL_CONFIG = EQUIVALENCE_CONFIGS[0]


@pytest.fixture(scope="module")
def equivalence_reports(equivalence_data, tmp_path_factory):
    """Each configuration's report, from one process (logical devices are set before TensorFlow starts),
    the "crowded" report on an image of 150 boxes and the "validation" report."""
    crowded = prepared_crowd(tmp_path_factory.mktemp("crowded"), crowded_boxes=150)
    validation = prepared_synth(tmp_path_factory.mktemp("validation"), 14, 128, (16, 48), seed=8, num_shards=1,
                                val_fraction=0.5)
    result = subprocess.run([sys.executable, "-m", "tests.helpers.strategy_equivalence", str(equivalence_data), "3",
                             *EQUIVALENCE_CONFIGS, "--control", CONTROL_CONFIG, "--crowded", str(crowded),
                             "--validation", str(validation)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads(line) for line in result.stdout.strip().splitlines() if line.startswith("{")]
    return {report["config"]: report for report in reports}


@pytest.mark.slow
@pytest.mark.parametrize("config", EQUIVALENCE_CONFIGS)
def test_mirrored_over_two_cpus_trains_like_one_device_with_synchronized_batch_norm(equivalence_reports, config):
    report = equivalence_reports[config]
    assert report["max_change"] > 1e-4  # the weights did move
    # Backbone trainable, BatchNorm in training mode: synchronized statistics make the two
    # replicas of 2 images train like one device with 4.
    assert report["sync_batch_difference"] < 0.01 * report["max_change"], report
    if config == CONTROL_CONFIG:  # per-replica statistics differ from the global batch's: the test can fail
        assert report["batch_difference"] > 10 * report["sync_batch_difference"], report


@pytest.mark.slow
def test_an_image_of_150_boxes_reaches_the_mirrored_replicas_whole(equivalence_reports):
    report = equivalence_reports["crowded"]
    assert report["max_boxes"] == 152  # fitted to the data's 150, rounded up to a multiple of 8
    assert report["boxes_per_image"] == [2] * 7 + [150]


@pytest.mark.slow
def test_mirrored_validation_runs_full_static_batches_and_loses_no_image(equivalence_reports):
    report = equivalence_reports["validation"]
    assert report["val_images"] % 4, "the split must leave a last, smaller global batch"
    assert report["steps"] == -(-report["val_images"] // 4)
    assert report["replica_batch_sizes"] == [2] and report["valid_images"] == report["val_images"]
    # The same images in the same global batches, the blank ones counting in nothing: the same losses.
    for name, value in report["one_device"].items():
        assert report["mirrored"][name] == pytest.approx(value, rel=1e-5), name
