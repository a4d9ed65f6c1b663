"""Comparing two models' detections on the same images: a model against itself is no difference,
exactly; shifted boxes are found worse; better boxes are found better; the pairing is by image; the
signed-rank test equals SciPy's and the verdict follows the Holm-adjusted p-values."""

import dataclasses

import numpy as np
import pytest

from keras_models.evaluation import coco_metrics
from keras_models.evaluation.model_comparison import (ALPHA, COMPARED_METRICS, F1, MASK_METRICS, best_f1_thresholds,
                                                       compare as compare_at)
from keras_models.evaluation.model_comparison import comparison_report
from keras_models.evaluation.signed_rank_test import holm_adjusted, signed_rank_test
from tests.builders import ground_truth_as_detections, random_evaluation_images, with_ellipse_masks


def shifted(image, fraction):
    """The image with every detection moved right by `fraction` of its width."""
    widths = image.detection_boxes[:, 2] - image.detection_boxes[:, 0]
    return dataclasses.replace(image, detection_boxes=image.detection_boxes + np.outer(widths * fraction, [1, 0, 1, 0]))


def compare(first, second, num_classes, resamples):
    """`compare` at each model's best-F1 threshold on the compared images themselves."""
    return compare_at(first, second, num_classes, best_f1_thresholds(first, second, num_classes), resamples)


def verdict_of(comparison, name: str) -> str:
    return next(part for part in comparison.verdict.split(": ", 1)[1].split("; ") if part.startswith(f"{name}: "))


@pytest.fixture
def images(rng):
    return random_evaluation_images(rng, 60, 3)


def test_a_model_against_itself_is_no_difference_exactly(images):
    comparison = compare(images, images, 3, resamples=200)
    for name in COMPARED_METRICS:
        paired = comparison.bootstrap[name]
        assert paired.difference == 0.0 and paired.low == 0.0 and paired.high == 0.0 and paired.second_wins == 0.0
        assert np.all(paired.samples == 0.0) and len(paired.samples) == 200
    assert comparison.t_test.p_value == 1.0 and comparison.t_test.statistic == 0.0
    assert comparison.signed_rank.p_value == 1.0 and comparison.signed_rank.nonzero == 0
    assert comparison.holm_p_values == {"AP": 1.0, "AP50": 1.0, "AP75": 1.0, F1: 1.0}
    for name in (*COMPARED_METRICS, F1):
        assert verdict_of(comparison, name).startswith(f"{name}: no difference shown")


def test_shifted_boxes_are_found_worse(images):
    comparison = compare(images, [shifted(image, 0.3) for image in images], 3, resamples=200)
    ap = comparison.bootstrap["AP"]
    assert ap.high < 0 and ap.second_wins == 0.0
    assert comparison.t_test.p_value < 0.01 and comparison.t_test.mean_difference < 0
    assert verdict_of(comparison, "AP").startswith(f"AP: B lower (Δ {ap.difference:+.3f}, 95% interval")
    assert verdict_of(comparison, F1).startswith(f"{F1}: B lower")


def test_masks_filled_to_their_boxes_are_found_worse_and_the_boxes_the_same(images):
    """Both models have the same boxes; B's masks are the whole boxes, A's the objects' ellipses."""
    first = [with_ellipse_masks(image) for image in images]
    second = [with_ellipse_masks(image, filled=lambda index: True) for image in images]
    # Enough resamples that a difference every resample shows survives Holm's factor of 7.
    comparison = compare(first, second, 3, resamples=1000)
    assert set(comparison.holm_p_values) == {*COMPARED_METRICS, *MASK_METRICS, F1}
    for name in COMPARED_METRICS:
        assert comparison.bootstrap[name].difference == 0.0
    for name, metric in MASK_METRICS.items():
        paired = comparison.mask_bootstrap[name]
        assert paired.first == pytest.approx(coco_metrics.summary(coco_metrics.evaluate_coco(first, 3, "segm"))[metric])
    assert verdict_of(comparison, "mask AP").startswith("mask AP: B lower")
    assert comparison_report(comparison)["bootstrap"]["mask AP"]["difference"] < 0
    assert compare(images, images, 3, resamples=10).mask_bootstrap is None  # boxes only: no mask metrics


def test_better_boxes_are_found_better_and_the_point_estimates_are_pycocotools(images):
    perfect = [ground_truth_as_detections(image) for image in images]
    comparison = compare(images, perfect, 3, resamples=200)
    for name in COMPARED_METRICS:
        paired = comparison.bootstrap[name]
        assert paired.first == pytest.approx(coco_metrics.summary(coco_metrics.evaluate_coco(images, 3))[name])
        assert paired.second == pytest.approx(1.0) and paired.low > 0 and paired.second_wins == 1.0
    assert all(verdict_of(comparison, name).startswith(f"{name}: B higher") for name in (*COMPARED_METRICS, F1))
    report = comparison_report(comparison)
    assert report["images"] == 60 and report["bootstrap"]["AP"]["B"] == pytest.approx(1.0)
    assert [entry["B"] for entry in report["per_image_f1"]["images"]] == [1.0] * 60


def test_pairing_by_image_sees_a_small_consistent_loss(images):
    """Boxes shifted by 5% of their width: each model's own interval overlaps the other's, but
    resampling both with the same images shows B loses (measured on three seeds: paired width 0.03,
    each alone 0.09 to 0.11)."""
    from keras_models.evaluation.bootstrap import bootstrap_intervals

    slightly_off = [shifted(image, 0.05) for image in images]
    paired = compare(images, slightly_off, 3, resamples=200).bootstrap["AP"]
    alone = [bootstrap_intervals(coco_metrics.evaluate_coco(each, 3), resamples=200)["AP"]
             for each in (images, slightly_off)]
    assert alone[1].high > alone[0].low, "unpaired, the intervals overlap"
    assert paired.high < 0 and paired.high - paired.low < 0.5 * (alone[0].high - alone[0].low)


def test_a_model_whose_every_detection_is_wrong_reports_in_plain_json(images):
    import json

    from keras_models.evaluation.compare_job import format_comparison

    wrong = [shifted(image, 5.0) for image in images]  # far from every box
    report = comparison_report(compare(images, wrong, 3, resamples=100))
    assert report["per_image_f1"]["thresholds"]["B"] is None, "keeping nothing is B's best F1"
    text = json.dumps(report, allow_nan=False)
    shown = format_comparison({**json.loads(text), "split": "val", "data": "DIR", "A": {"run": "a"}, "B": {"run": "b"}})
    assert "B none kept" in shown and shown.endswith(report["verdict"])


def test_different_images_cannot_be_compared(images):
    with pytest.raises(ValueError, match="different images"):
        compare(images, images[::-1], 3, resamples=100)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_signed_rank_test_equals_scipys(seed):
    from scipy import stats

    rng = np.random.default_rng(seed)
    first = rng.choice([0.0, 0.5, 0.8, 1.0], 80)  # bounded, with ties and zero differences, as per-image F1
    second = np.clip(first + rng.choice([0.0, 0.0, 0.2, -0.1, 0.3], 80), 0, 1)
    ours = signed_rank_test(first, second)
    theirs = stats.wilcoxon(second, first, zero_method="wilcox", correction=False, method="approx")
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)
    assert ours.nonzero == int(np.sum(second != first))
    assert min(ours.positive_rank_sum, ours.nonzero * (ours.nonzero + 1) / 2 - ours.positive_rank_sum) == \
        pytest.approx(theirs.statistic)


def test_holm_multiplies_the_smallest_by_the_family_size_and_stays_monotone():
    adjusted = holm_adjusted({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.5})
    assert adjusted == pytest.approx({"a": 0.04, "b": 0.09, "c": 0.09, "d": 0.5})


def test_each_metric_is_judged_by_its_holm_adjusted_p(images):
    slightly_off = [shifted(image, 0.05) for image in images]
    comparison = compare(images, slightly_off, 3, resamples=200)
    adjusted = comparison.holm_p_values
    for name in COMPARED_METRICS:
        paired = comparison.bootstrap[name]
        assert paired.p_value == pytest.approx(min(1.0, 2 * (np.sum(paired.samples >= 0) + 1) / 201))
        expected = "no difference shown" if adjusted[name] >= ALPHA else "B lower"
        assert verdict_of(comparison, name).startswith(f"{name}: {expected}"), comparison.verdict
    assert adjusted["AP"] >= comparison.bootstrap["AP"].p_value
