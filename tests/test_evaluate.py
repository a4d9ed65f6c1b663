"""`boxflow evaluate` end to end: records → detections → report, with the plumbing (box
convention, label ids, image pairing) checked by feeding the ground truth back as detections."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from contracts import record_schema as keys
from boxflow.cli import main
from keras_models.evaluation.detection_source import collect
from keras_models.evaluation.evaluate_job import evaluate_images
from tests.builders import AP50_FLOORS, prepared_synth, read_records

CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def data_dir(tiny_run):
    return tiny_run[0]


@pytest.fixture(scope="module")
def run_dir(tiny_run, tmp_path_factory):
    # A copy: these tests write reports into the run directory.
    import shutil

    run = tmp_path_factory.mktemp("evaluate_run") / "run"
    shutil.copytree(tiny_run[1], run)
    return run


def ground_truth_detector(serialized):
    """Answers each record with its own annotations, as a SavedModel's serve_examples would."""
    corners = (keys.YMIN, keys.XMIN, keys.YMAX, keys.XMAX)  # the TF OD API output order
    features = {key: tf.io.VarLenFeature(tf.float32) for key in corners}
    features[keys.CLASS_LABEL] = tf.io.VarLenFeature(tf.int64)
    parsed = {key: tf.sparse.to_dense(value) for key, value in tf.io.parse_example(serialized, features).items()}
    boxes = tf.stack([parsed[key] for key in corners], axis=-1)
    labels = parsed[keys.CLASS_LABEL]
    return {"detection_boxes": boxes, "detection_scores": tf.cast(labels > 0, tf.float32),
            "detection_classes": tf.cast(labels, tf.float32),
            "num_detections": tf.reduce_sum(tf.cast(labels > 0, tf.float32), axis=1)}


def test_ground_truth_read_from_records_matches_the_source(data_dir):
    images = collect(str(data_dir), "val", ground_truth_detector, batch_size=5)
    records = read_records(data_dir, "val")
    assert [image.source_id for image in images] == [record["source_id"] for record in records]
    for image, record in zip(images, records):
        scale = [record["width"], record["height"]] * 2
        np.testing.assert_allclose(image.boxes, record["boxes"] * scale, atol=1e-4)
        assert (image.classes + 1).tolist() == record["labels"]
        np.testing.assert_allclose(image.detection_boxes, image.boxes, atol=1e-4)


def test_ground_truth_as_detections_scores_one_end_to_end(data_dir):
    images = collect(str(data_dir), "val", ground_truth_detector, batch_size=5)
    metrics, _ = evaluate_images(images, CLASSES, resamples=10)
    assert metrics["coco"]["AP"] == pytest.approx(1.0) and metrics["voc_AP50"] == pytest.approx(1.0)
    assert metrics["AP_interval"]["low"] == pytest.approx(1.0)
    assert metrics["boxes"] == metrics["detections"] == sum(len(r["labels"]) for r in read_records(data_dir, "val"))


def test_evaluate_a_run_directory(run_dir, data_dir, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    assert main(["evaluate", "--run", str(run_dir), "--data", str(data_dir), "--out", str(report_path),
                 "--resamples", "20"]) == 0
    report = json.loads(report_path.read_text())
    assert report["images"] == len(read_records(data_dir, "val"))
    assert report["weights"].endswith("model.weights.h5")
    assert set(report["coco"]) == {"AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10",
                                   "AR100", "AR_small", "AR_medium", "AR_large"}
    assert set(report["per_class"]) == set(CLASSES)
    # The same weights on the same images: the training's last validation score, to the digit.
    history = json.loads((run_dir / "history.json").read_text())
    assert report["coco"]["AP50"] == pytest.approx(history[-1]["val_mAP50"], abs=1e-6)
    assert report["coco"]["AP"] == pytest.approx(history[-1]["val_mAP"], abs=1e-6)
    assert report["AP_interval"] == report["intervals"]["AP"]
    assert set(report["intervals"]) == {"AP", "AP50", "AP75", "AP_small"}
    for name, interval in report["intervals"].items():
        if interval is not None:  # AP_small: some resample may hold no small box
            assert interval["low"] <= interval["high"] and interval["resamples"] == 20
    printed = capsys.readouterr().out
    assert "AP 95% interval [" in printed and "AP50 95% interval [" in printed
    with Image.open(report["pr_curves"]) as curves:
        assert curves.format == "PNG" and curves.width > 300


def test_boxes_placed_at_random_score_far_below_the_trained_runs_floor(data_dir):
    import dataclasses

    rng = np.random.default_rng(0)
    images = collect(str(data_dir), "val", ground_truth_detector, batch_size=5)
    guesses = []
    for image in images:
        corners = rng.uniform(0, [image.width, image.height], (100, 2, 2))  # 100 boxes per image, as the model's
        guesses.append(dataclasses.replace(image, detection_boxes=np.concatenate([corners.min(1), corners.max(1)], 1),
                                           detection_classes=rng.integers(0, len(CLASSES), 100),
                                           detection_scores=rng.random(100)))
    metrics, _ = evaluate_images(guesses, CLASSES, resamples=0)
    assert metrics["coco"]["AP50"] < min(AP50_FLOORS.values()) / 10


def test_default_report_goes_into_the_run_directory(run_dir, data_dir):
    assert main(["evaluate", "--run", str(run_dir), "--data", str(data_dir), "--resamples", "0"]) == 0
    report = json.loads((run_dir / "evaluation" / "val.json").read_text())
    assert "AP_interval" not in report and (run_dir / "evaluation" / "val.pr_curves.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--run", "/nonexistent/run"], "cannot read config.json"),
    (["--model", "/nonexistent/model"], "no assets.extra/label_map.pbtxt"),
    (["--run", "RUN", "--split", "test"], "no shards for split 'test'"),
])
def test_bad_arguments_exit_2_with_one_line(args, message, run_dir, data_dir, capsys):
    args = [str(run_dir) if arg == "RUN" else arg for arg in args]
    assert main(["evaluate", *args, "--data", str(data_dir)]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1


def test_a_model_of_other_classes_is_refused(run_dir, tmp_path, capsys):
    other = prepared_synth(tmp_path, 8, 128, (16, 48), seed=2, val_fraction=0.5)
    (other / "label_map.pbtxt").write_text("item { id: 1 name: 'cat' }\n")
    assert main(["evaluate", "--run", str(run_dir), "--data", str(other)]) == 2
    assert "differ from the dataset's ['cat']" in capsys.readouterr().err
