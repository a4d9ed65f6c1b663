"""Panoptic quality against hand-worked cases and against an independent reference written the way
panopticapi's `pq_compute_single_core` works (segment ids, a Counter of (true, predicted) id pairs)."""

from collections import Counter

import numpy as np
import pytest

from contracts.record_schema import IGNORE_LABEL
from keras_models.evaluation.panoptic_quality import PanopticImage, panoptic_quality

VOID = IGNORE_LABEL
THING, STUFF = 1, 2  # class ids: a thing (with instances) and a stuff class


def scene(height: int = 8, width: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Stuff everywhere, class and instance maps to paint things on."""
    return np.full((height, width), STUFF), np.zeros((height, width), int)


def paint(classes, instances, rows, columns, class_id, instance):
    classes[rows, columns], instances[rows, columns] = class_id, instance


def reference_pq(images: list[PanopticImage], classes: list[int]) -> dict[int, float]:
    """PQ per class, as panopticapi computes it: segment ids, pair counts, then the rules."""
    stats = {c: [0, 0, 0, 0.0] for c in classes}  # TP, FP, FN, IoU sum
    for image in images:
        def ids(class_map, instance_map):
            segment = np.where(class_map == VOID, 0, class_map * 1000 + instance_map + 1)
            return segment, {int(s): (int(s) // 1000, Counter(segment.ravel().tolist())[s]) for s in np.unique(segment)
                             if s != 0}
        true_ids, true_info = ids(image.true_classes, image.true_instances)
        predicted_ids, predicted_info = ids(image.predicted_classes, image.predicted_instances)
        crowd_ids = {c * 1000 + i + 1 for c, i in image.crowd}
        pairs = Counter(zip(true_ids.ravel().tolist(), predicted_ids.ravel().tolist()))
        matched_true, matched_predicted = set(), set()
        for (t, p), intersection in pairs.items():
            if t == 0 or p == 0 or t in crowd_ids or true_info[t][0] != predicted_info[p][0]:
                continue
            union = predicted_info[p][1] + true_info[t][1] - intersection - pairs.get((0, p), 0)
            if intersection / union > 0.5:
                stats[true_info[t][0]][0] += 1
                stats[true_info[t][0]][3] += intersection / union
                matched_true.add(t)
                matched_predicted.add(p)
        for t, (class_id, _) in true_info.items():
            if t not in matched_true and t not in crowd_ids:
                stats[class_id][2] += 1
        crowd_of = {t // 1000: t for t in crowd_ids}
        for p, (class_id, area) in predicted_info.items():
            if p in matched_predicted:
                continue
            ignored = pairs.get((0, p), 0) + (pairs.get((crowd_of[class_id], p), 0) if class_id in crowd_of else 0)
            if ignored / area > 0.5:
                continue
            stats[class_id][1] += 1
    return {c: (iou / (tp + fp / 2 + fn / 2) if tp + fp + fn else None) for c, (tp, fp, fn, iou) in stats.items()}


def check(images: list[PanopticImage], expected: dict[int, float]) -> dict:
    result = panoptic_quality(images, [THING], [STUFF])
    reference = reference_pq(images, [THING, STUFF])
    for class_id, value in expected.items():
        got = result["per_class"].get(class_id, {}).get("PQ")
        assert got == pytest.approx(value) and reference[class_id] == pytest.approx(value), (class_id, got, reference)
    return result


def test_a_perfect_prediction_scores_one():
    classes, instances = scene()
    paint(classes, instances, slice(1, 4), slice(1, 4), THING, 1)
    paint(classes, instances, slice(5, 7), slice(5, 8), THING, 2)
    image = PanopticImage(classes, instances, classes.copy(), instances.copy())
    result = check([image], {THING: 1.0, STUFF: 1.0})
    assert result["all"] == {"PQ": 1.0, "SQ": 1.0, "RQ": 1.0, "classes": 2}


def test_an_iou_of_exactly_one_half_is_no_match():
    # The truth: a 4x4 thing; the prediction: its left 4x2 half, so IoU 8 / 16.
    classes, instances = scene()
    paint(classes, instances, slice(0, 4), slice(0, 4), THING, 1)
    predicted_classes, predicted_instances = scene()
    paint(predicted_classes, predicted_instances, slice(0, 4), slice(0, 2), THING, 1)
    image = PanopticImage(classes, instances, predicted_classes, predicted_instances)
    # Thing: IoU 8/16 = 0.5, not > 0.5: one FP and one FN, PQ 0. Stuff: 48 true pixels, 56 predicted,
    # 48 shared: IoU 48/56 > 0.5, a match.
    check([image], {THING: 0.0, STUFF: 48 / 56})
    # One pixel more and it matches: IoU 9/16.
    paint(predicted_classes, predicted_instances, 0, 2, THING, 1)
    check([PanopticImage(classes, instances, predicted_classes, predicted_instances)], {THING: 9 / 16})


def test_a_crowd_region_is_no_false_negative_and_a_prediction_on_it_no_false_positive():
    classes, instances = scene()
    paint(classes, instances, slice(0, 4), slice(0, 8), THING, 1)  # a crowd of things
    paint(classes, instances, slice(5, 8), slice(0, 3), THING, 2)  # one thing
    predicted_classes, predicted_instances = scene()
    paint(predicted_classes, predicted_instances, slice(0, 3), slice(0, 3), THING, 5)  # inside the crowd
    paint(predicted_classes, predicted_instances, slice(5, 8), slice(0, 3), THING, 6)
    image = PanopticImage(classes, instances, predicted_classes, predicted_instances, crowd=frozenset({(THING, 1)}))
    result = check([image], {THING: 1.0})
    assert result["things"]["RQ"] == 1.0
    # Without the crowd flag the crowd is missed and the prediction on it is a false positive.
    check([PanopticImage(classes, instances, predicted_classes, predicted_instances)], {THING: 1 / 2})


def test_void_pixels_leave_the_union_and_a_prediction_mostly_on_void_is_no_false_positive():
    classes, instances = scene()
    paint(classes, instances, slice(0, 4), slice(0, 4), THING, 1)
    classes[:, 6:] = VOID
    predicted_classes, predicted_instances = scene()
    # 16 on the thing and 8 on void: IoU 16 / (24 - 8 + 16 - 16) = 1.
    paint(predicted_classes, predicted_instances, slice(0, 4), slice(0, 4), THING, 1)
    paint(predicted_classes, predicted_instances, slice(0, 4), slice(6, 8), THING, 1)
    # 9 pixels, 6 of them on void: no false positive.
    paint(predicted_classes, predicted_instances, slice(5, 8), slice(5, 8), THING, 2)
    image = PanopticImage(classes, instances, predicted_classes, predicted_instances)
    check([image], {THING: 1.0})
    # 6 pixels, 3 on void: exactly half is not more than half, so a false positive.
    predicted_classes[5:8, 7], predicted_instances[5:8, 7] = STUFF, 0
    check([PanopticImage(classes, instances, predicted_classes, predicted_instances)], {THING: 1 / 1.5})


def test_random_scenes_agree_with_the_reference():
    rng = np.random.default_rng(0)
    images = []
    for _ in range(20):
        classes, instances = scene(16, 16)
        predicted_classes, predicted_instances = scene(16, 16)
        for number in range(1, 4):
            top, left = rng.integers(0, 12, size=2)
            paint(classes, instances, slice(top, top + 4), slice(left, left + 4), THING, number)
            shift = rng.integers(-1, 2, size=2)
            paint(predicted_classes, predicted_instances, slice(max(top + shift[0], 0), top + shift[0] + 4),
                  slice(max(left + shift[1], 0), left + shift[1] + 4), THING, number + 10)
        classes[rng.random((16, 16)) < 0.05] = VOID
        images.append(PanopticImage(classes, instances, predicted_classes, predicted_instances,
                                    crowd=frozenset({(THING, 3)}) if rng.random() < 0.3 else frozenset()))
    result = panoptic_quality(images, [THING], [STUFF])
    reference = reference_pq(images, [THING, STUFF])
    for class_id in (THING, STUFF):
        assert result["per_class"][class_id]["PQ"] == pytest.approx(reference[class_id])
    assert 0 < result["things"]["PQ"] < 1


def test_bootstrap_resamples_score_as_the_whole_sample_does(rng):
    """Scored with every image drawn once, the resampled PQ equals `panoptic_quality`'s; the
    intervals hold the whole sample's values; images drawn twice count twice."""
    from keras_models.evaluation.panoptic_evaluation import panoptic_metrics, resampled_pq
    from keras_models.evaluation.panoptic_quality import ClassCounts, quality_of_counts, summed_counts

    per_image = [{label: ClassCounts(*rng.integers(0, 3, size=3).tolist(), float(rng.uniform(0, 2)))
                  for label in rng.choice([1, 2, 3, 4], size=rng.integers(1, 4), replace=False).tolist()}
                 for _ in range(40)]
    whole = quality_of_counts(summed_counts(per_image), [1, 2, 3], [4])
    drawn = resampled_pq(per_image, np.ones((1, 40), np.int64), 4, [4])
    assert drawn["PQ"][0] == pytest.approx(whole["all"]["PQ"]) and drawn["PQ stuff"][0] == pytest.approx(
        whole["stuff"]["PQ"]) and drawn["PQ things"][0] == pytest.approx(whole["things"]["PQ"])
    twice = resampled_pq(per_image, np.array([[2] + [0] * 39]), 4, [4])
    assert twice["PQ"][0] == pytest.approx(quality_of_counts(summed_counts([per_image[0]] * 2), [1, 2, 3], [4])["all"]["PQ"])
    metrics = panoptic_metrics(per_image, ["a", "b", "c", "d"], [4], resamples=100)
    for group in ("all", "things", "stuff"):
        for quality in ("PQ", "SQ", "RQ"):
            interval = metrics["intervals"][group][quality]
            assert interval["low"] <= metrics[group][quality] <= interval["high"], (group, quality)
