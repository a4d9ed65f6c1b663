"""Calibration of box uncertainty: matched edges, interval coverage from tfp's quantiles equal to
the closed forms, a model whose stddev is the truth's noise covers as it claims and an overconfident
one does not, and `boxflow evaluate` reports it for a run and its export alike."""

import dataclasses
import json
import math
import shutil
import statistics

import numpy as np
import pytest

from boxflow.cli import main
from keras_models.evaluation.calibration import (REPORTED_LEVELS, calibration_report, fit_temperatures, match_edges,
                                                 mean_negative_log_likelihood, observed_coverage)
from keras_models.evaluation.evaluate_job import format_report
from keras_models.ops.box_uncertainty import LAPLACE, NORMAL
from tests.builders import evaluation_image


def noisy_images(rng, kind: str, noise: float, claimed: float, count: int = 400) -> list:
    """Images of 5 boxes each, detected with every edge off by noise of stddev `noise` pixels drawn
    from `kind`, and claiming stddev `claimed`."""
    images = []
    for _ in range(count):
        corners = rng.uniform(0, 300, (5, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(60, 100, (5, 2))], axis=1)
        if kind == LAPLACE:
            errors = rng.laplace(0, noise / math.sqrt(2), boxes.shape)
        else:
            errors = rng.normal(0, noise, boxes.shape)
        images.append(evaluation_image(boxes, [0] * 5, boxes + errors, [0] * 5, rng.uniform(0.5, 1, 5), 400, 400,
                                       detection_stddev=np.full(boxes.shape, claimed)))
    return images


@pytest.mark.parametrize("kind", [LAPLACE, NORMAL])
def test_a_model_that_knows_its_noise_covers_as_it_claims_and_an_overconfident_one_does_not(rng, kind):
    calibrated = calibration_report(noisy_images(rng, kind, noise=3.0, claimed=3.0), kind)
    assert calibrated["matched_detections"] == 2000
    for level in REPORTED_LEVELS:  # 8,000 edges: a binomial share's standard error is under 0.6 points
        assert calibrated["coverage"][f"{level:.2f}"] == pytest.approx(level, abs=0.02)
    assert calibrated["calibration_error"] < 0.015
    overconfident = calibration_report(noisy_images(rng, kind, noise=3.0, claimed=1.0), kind)
    assert overconfident["coverage"]["0.95"] < 0.7 and overconfident["calibration_error"] > 0.2
    assert overconfident["mean_negative_log_likelihood"] > calibrated["mean_negative_log_likelihood"]


def test_coverage_and_likelihood_equal_the_closed_forms(rng):
    images = noisy_images(rng, LAPLACE, noise=2.0, claimed=1.5, count=20)
    edges = match_edges(images)
    errors = np.abs(edges.truth - edges.predicted)
    for kind, half_width in ((LAPLACE, lambda p: -1.5 / math.sqrt(2) * math.log(1 - p)),
                             (NORMAL, lambda p: 1.5 * statistics.NormalDist().inv_cdf(0.5 + p / 2))):
        expected = [float(np.mean(errors <= half_width(p))) for p in REPORTED_LEVELS]
        assert observed_coverage(edges, kind, REPORTED_LEVELS) == pytest.approx(expected, abs=1e-12)
    b = 1.5 / math.sqrt(2)
    assert mean_negative_log_likelihood(edges, LAPLACE) == pytest.approx(np.mean(errors / b + math.log(2 * b)))
    assert mean_negative_log_likelihood(edges, NORMAL) == pytest.approx(
        np.mean(errors ** 2 / (2 * 1.5 ** 2) + math.log(1.5) + 0.5 * math.log(2 * math.pi)))


def test_matching_takes_the_most_confident_detection_of_the_right_class_once_and_never_crowds():
    truth = [[0, 0, 10, 10], [50, 50, 60, 60], [80, 80, 90, 90]]
    image = evaluation_image(
        truth, [0, 0, 1], is_crowd=[False, True, False],
        detection_boxes=[[0, 0, 10, 11], [0, 0, 10, 10.5], [50, 50, 60, 60], [80, 80, 90, 90], [30, 30, 40, 40]],
        detection_classes=[0, 0, 0, 0, 0], detection_scores=[0.6, 0.9, 0.9, 0.9, 0.9],
        detection_stddev=np.arange(20).reshape(5, 4))
    edges = match_edges([image])
    # The 0.9 duplicate wins the first box; the crowd box, the wrong class and the miss match nothing.
    np.testing.assert_array_equal(edges.predicted, [[0, 0, 10, 10.5]])
    np.testing.assert_array_equal(edges.stddev, [[4, 5, 6, 7]])
    np.testing.assert_array_equal(edges.truth, [[0, 0, 10, 10]])


def test_evaluate_reports_calibration_with_a_reliability_plot(tiny_uncertain_run, tiny_run, tmp_path):
    data, run = tiny_uncertain_run
    report_path = tmp_path / "report.json"
    assert main(["evaluate", "--run", str(run), "--data", str(data), "--out", str(report_path),
                 "--resamples", "0"]) == 0
    report = json.loads(report_path.read_text())
    calibration = report["calibration"]
    assert calibration["distribution"] == "laplace" and calibration["matched_detections"] > 0
    assert set(calibration["coverage"]) == {"0.50", "0.68", "0.90", "0.95"}
    assert all(0 <= value <= 1 for value in calibration["coverage"].values())
    assert (tmp_path / "report.calibration.png").stat().st_size > 0
    assert "box edge calibration (laplace" in format_report(report)
    # A deterministic model's report has no calibration section.
    assert main(["evaluate", "--run", str(tiny_run[1]), "--data", str(data), "--out", str(tmp_path / "plain.json"),
                 "--resamples", "0"]) == 0
    assert "calibration" not in json.loads((tmp_path / "plain.json").read_text())


@pytest.mark.parametrize("kind", [LAPLACE, NORMAL])
def test_the_fitted_temperatures_maximize_the_likelihood(rng, kind):
    edges = match_edges(noisy_images(rng, kind, noise=3.0, claimed=1.0, count=200))
    temperatures = fit_temperatures(edges, kind)
    assert temperatures == pytest.approx((3.0,) * 4, rel=0.08)

    def nll(factors):
        return mean_negative_log_likelihood(dataclasses.replace(edges, stddev=edges.stddev * np.asarray(factors)), kind)

    best = nll(temperatures)
    for edge in range(4):
        for change in (0.95, 1.05):
            moved = list(temperatures)
            moved[edge] *= change
            assert nll(moved) > best


def test_calibrate_stores_temperatures_that_evaluate_and_export_then_use(tiny_uncertain_run, tmp_path, capsys):
    data, trained_run = tiny_uncertain_run
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)  # the shared run stays uncalibrated
    common = ["--data", str(data), "--resamples", "0"]

    def evaluated(name: str, *flags: str) -> dict:
        assert main(["evaluate", *flags, "--out", str(tmp_path / f"{name}.json"), *common]) == 0
        return json.loads((tmp_path / f"{name}.json").read_text())["calibration"]

    raw = evaluated("raw", "--run", str(run))
    assert raw["temperatures"] is None and raw["in_sample"] is False
    # Fitted on the evaluated images: the report says it is in-sample, in its JSON and its text.
    in_sample = evaluated("in_sample", "--run", str(run), "--calibrate")
    assert in_sample["in_sample"] is True and in_sample["fitted_on"]["split"] == "val"
    assert "IN-SAMPLE: the temperatures were fitted on these same images ('val')" in capsys.readouterr().out
    assert in_sample["mean_negative_log_likelihood"] <= raw["mean_negative_log_likelihood"]

    fitted = evaluated("fit", "--run", str(run), "--calibrate", "--calibrate-split", "train")
    stored = json.loads((run / "box_calibration.json").read_text())
    assert fitted["temperatures"] == stored["temperatures"] and stored["distribution"] == "laplace"
    assert stored["split"] == "train" and stored["temperatures"] != in_sample["temperatures"]
    assert fitted["in_sample"] is False and fitted["fitted_on"] == {"data": str(data), "split": "train"}
    output = capsys.readouterr().out
    assert "IN-SAMPLE" not in output and "temperatures fitted on 'train'" in output
    assert "unmatched ones, the largest errors, are not counted" in output
    # Evaluating the run again, and its export, applies the stored temperatures and says where from.
    again = evaluated("again", "--run", str(run))
    assert again["coverage"] == fitted["coverage"] and again["fitted_on"]["split"] == "train"
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "models" / "calibrated")]) == 0
    exported = evaluated("export", "--model", str(tmp_path / "models" / "calibrated" / "1"))
    assert exported["coverage"] == pytest.approx(fitted["coverage"], abs=1e-3)
    assert exported["fitted_on"]["split"] == "train" and exported["in_sample"] is False
    # On the split they were fitted on, the run's report is in-sample again.
    assert evaluated("on_train", "--run", str(run), "--split", "train")["in_sample"] is True


def test_calibrate_needs_a_run_with_box_uncertainty(tiny_run, tmp_path, capsys):
    data, run = tiny_run
    assert main(["evaluate", "--run", str(run), "--data", str(data), "--calibrate"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "predicts no box uncertainty; train it with --box-uncertainty laplace or normal")
    assert not (run / "box_calibration.json").exists()
    assert main(["evaluate", "--model", str(tmp_path), "--data", str(data), "--calibrate"]) == 2
    assert "--calibrate stores its temperatures in a run directory: give --run, not --model" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(run), "--data", str(data), "--calibrate-split", "train"]) == 2
    assert "--calibrate-split names the split --calibrate fits on: give --calibrate too" in capsys.readouterr().err
