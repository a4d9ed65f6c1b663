"""`run()` for `boxflow compare`: two models' detections on one split, compared image by image."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Callable, Optional, Sequence

from contracts.atomic_file import write_json_atomically
from contracts.errors import BoxflowError
from contracts.user_paths import check_output_file, make_folder
from keras_models.evaluation.model_comparison import COMPARED_METRICS, MASK_METRICS
from keras_models.evaluation.panoptic_evaluation import PQ_GROUPS
from keras_models.evaluation.paired_t_test import SMALL_SAMPLE
from pipeline.dataset import read_dataset_info, shard_files, stuff_classes

REPORT_VERSION = 2
# Fewer resamples cannot show a difference: a bootstrap p-value is at least 2 / (n + 1), and Holm
# multiplies the smallest of the verdict's 4 by 4, so below 200 resamples it cannot fall under 5%.
MIN_RESAMPLES = 200


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """`first` is A, `second` is B: run directories or SavedModel version directories."""

    data_dir: str
    first: str
    second: str
    split: str = "val"
    report_path: Optional[str] = None
    batch_size: int = 16
    resamples: int = 1000
    seed: int = 0
    # The operating point of per-image F1: one score threshold for both models, or each model's
    # best-F1 threshold on `threshold_split`; neither: on the other held-out split (see
    # `threshold_split_for`), else on the compared images themselves, which the report says.
    score_threshold: Optional[float] = None
    threshold_split: Optional[str] = None

    def __post_init__(self) -> None:
        if self.score_threshold is not None and self.threshold_split is not None:
            raise BoxflowError("--score-threshold fixes the operating point, --threshold-split chooses it: give one")
        if self.score_threshold is not None and not 0 <= self.score_threshold <= 1:
            raise BoxflowError(f"--score-threshold must be in [0, 1], got {self.score_threshold}")
        if self.batch_size < 1:
            raise BoxflowError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.resamples < MIN_RESAMPLES:
            raise BoxflowError(f"--resamples must be at least {MIN_RESAMPLES} for a 95% interval, got {self.resamples}")

    @property
    def report(self) -> str:
        """The JSON report's path: `--out`, else `./comparison-SPLIT.json`."""
        return self.report_path or f"comparison-{self.split}.json"


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(settings: CompareSettings, progress: Callable[[str], None] = _to_stderr) -> dict:
    """Compares, writes the JSON report and the difference plot beside it, returns the report."""
    from keras_models.evaluation.comparison_plot import write_difference_plot
    from keras_models.evaluation.detection_source import check_dataset_classes, collect, detection_source
    from keras_models.evaluation.model_comparison import compare, comparison_report

    started = time.monotonic()
    # Fail fast, before a model is loaded: the data, and where the report goes.
    shard_files(settings.data_dir, settings.split)
    report_path = settings.report
    make_folder(os.path.dirname(os.path.abspath(report_path)), "--out")
    check_output_file(report_path, "--out")
    sources = {}
    for letter, path in (("A", settings.first), ("B", settings.second)):
        source = detection_source(path)
        check_dataset_classes(settings.data_dir, source.class_names, path)
        sources[letter] = source
    if sources["A"].labels_pixels or sources["B"].labels_pixels:
        return _compare_semantic(settings, sources, report_path, started, progress)
    detections = {}
    for letter, source in sources.items():
        progress(f"[compare] {letter}: detecting on '{settings.split}' of {settings.data_dir}")
        detections[letter] = collect(settings.data_dir, settings.split, source.detect, settings.batch_size,
                                     progress=lambda done: progress(f"[compare] {letter}: {done} images"))
    if len(detections["A"]) < 2:
        raise BoxflowError(f"{settings.data_dir}: split '{settings.split}' has {len(detections['A'])} image; "
                           "comparing needs at least 2")
    num_classes = len(sources["A"].class_names)
    thresholds, operating_point = _operating_point(settings, sources, detections, num_classes, progress)
    progress(f"[compare] {settings.resamples} paired bootstrap resamples over {len(detections['A'])} images")
    comparison = compare(detections["A"], detections["B"], num_classes, thresholds, settings.resamples,
                         seed=settings.seed, stuff_ids=stuff_classes(read_dataset_info(settings.data_dir)))

    plot_path = os.path.splitext(report_path)[0] + ".differences.png"
    write_difference_plot(comparison, plot_path)
    report = {"report_version": REPORT_VERSION, "data": settings.data_dir, "split": settings.split,
              **{letter: {**source.description, "box_uncertainty": source.box_uncertainty}
                 for letter, source in sources.items()},
              **comparison_report(comparison), "plot": plot_path, "seconds": round(time.monotonic() - started, 1)}
    report["per_image_f1"]["operating_point"] = operating_point
    write_json_atomically(report_path, report)
    return report


def _compare_semantic(settings: CompareSettings, sources: dict, report_path: str, started: float,
                      progress: Callable[[str], None]) -> dict:
    """Two semantic models' mIoU and pixel accuracy, paired image by image."""
    from keras_models.evaluation.semantic_comparison import compare_semantic
    from keras_models.evaluation.semantic_evaluation import collect_confusions

    kinds = {letter: "labels pixels" if source.labels_pixels else "finds objects" for letter, source in sources.items()}
    if len(set(kinds.values())) > 1:
        raise BoxflowError(f"A ({settings.first}) {kinds['A']} and B ({settings.second}) {kinds['B']}: compare two "
                           "detectors, or two semantic models")
    if settings.score_threshold is not None or settings.threshold_split is not None:
        raise BoxflowError("--score-threshold and --threshold-split choose detections; semantic models have none")
    matrices = {}
    for letter, source in sources.items():
        progress(f"[compare] {letter}: segmenting '{settings.split}' of {settings.data_dir}")
        matrices[letter] = collect_confusions(settings.data_dir, settings.split, source.detect,
                                              len(source.class_names) + 1, settings.batch_size,
                                              progress=lambda done: progress(f"[compare] {letter}: {done} images"))
    progress(f"[compare] {settings.resamples} paired bootstrap resamples over {len(matrices['A'])} images")
    try:
        comparison = compare_semantic(matrices["A"], matrices["B"], settings.resamples, seed=settings.seed)
    except ValueError as error:
        raise BoxflowError(f"{settings.data_dir}: split '{settings.split}': {error}") from None
    report = {"report_version": REPORT_VERSION, "data": settings.data_dir, "split": settings.split,
              **{letter: source.description for letter, source in sources.items()}, **comparison,
              "seconds": round(time.monotonic() - started, 1)}
    write_json_atomically(report_path, report)
    return report


def threshold_split_for(split: str, splits: Sequence[str]) -> Optional[str]:
    """The held-out split to choose operating points on when comparing on `split`: val for any other
    split, test for val; None when the dataset has no such split."""
    other = "val" if split != "val" else "test"
    return other if other in splits else None


def _operating_point(settings: CompareSettings, sources: dict, detections: dict, num_classes: int,
                     progress: Callable[[str], None]) -> tuple[tuple[float, float], dict]:
    """Both models' score thresholds for per-image F1, and how they were chosen (for the report)."""
    from keras_models.evaluation.detection_source import collect
    from keras_models.evaluation.model_comparison import best_f1_thresholds

    if settings.score_threshold is not None:
        return (settings.score_threshold,) * 2, {"score_threshold": settings.score_threshold}
    split = settings.threshold_split or threshold_split_for(
        settings.split, read_dataset_info(settings.data_dir)["splits"])
    if split is None or split == settings.split:
        return (best_f1_thresholds(detections["A"], detections["B"], num_classes),
                {"chosen_on": settings.split, "in_sample": True})
    chosen_on = {}
    for letter, source in sources.items():
        progress(f"[compare] {letter}: detecting on '{split}' to choose its score threshold")
        chosen_on[letter] = collect(settings.data_dir, split, source.detect, settings.batch_size,
                                    progress=lambda done: progress(f"[compare] {letter}: {done} images"))
    return best_f1_thresholds(chosen_on["A"], chosen_on["B"], num_classes), {"chosen_on": split, "in_sample": False}


def format_comparison(report: dict) -> str:
    """The comparison as a person reads it in a terminal: metrics, differences, test, verdict."""
    if "per_image_f1" not in report:  # two semantic models
        from keras_models.evaluation.semantic_comparison import format_semantic_comparison

        return format_semantic_comparison(report)
    lines = [f"{report['images']} images of '{report['split']}' in {report['data']}"]
    names = [name for name in (*COMPARED_METRICS, *MASK_METRICS, *PQ_GROUPS.values()) if name in report["bootstrap"]]
    for letter in ("A", "B"):
        metrics = "  ".join(f"{name} {report['bootstrap'][name][letter]:.3f}" for name in names
                            if report["bootstrap"][name])
        lines.append(f"{letter}  {report[letter].get('run') or report[letter].get('model')}  {metrics}")
    for name in names:
        paired = report["bootstrap"][name]
        if paired:
            lines.append(f"Δ{name:<5} {paired['difference']:+.3f}  {paired['level']:.0%} interval "
                         f"[{paired['low']:+.3f}, {paired['high']:+.3f}]  B higher in {paired['B_wins']:.0%} of "
                         f"{report['bootstrap']['resamples']} paired resamples")
    f1 = report["per_image_f1"]
    test, rank = f1["t_test"], f1["signed_rank_test"]
    statistic = "t = ∞" if test["statistic"] is None else f"t = {test['statistic']:.3f}"
    thresholds = {letter: "none kept" if value is None else f"{value:.3f}"
                  for letter, value in f1["thresholds"].items()}
    point = f1.get("operating_point", {})
    source = ("fixed by --score-threshold" if "score_threshold" in point else
              "IN-SAMPLE: chosen on these same images" if point.get("in_sample") else
              f"chosen on '{point['chosen_on']}'" if point else "chosen on these images")
    lines.append(f"per-image F1 at IoU 0.5 (score thresholds A {thresholds['A']}, B {thresholds['B']}, {source}): "
                 f"A {f1['mean']['A']:.3f}, B {f1['mean']['B']:.3f}; Wilcoxon signed-rank z = {rank['statistic']:.3f}, "
                 f"p = {rank['p_value']:.3g} ({rank['nonzero_differences']} images differ); paired t-test "
                 f"{statistic}, df {test['degrees_of_freedom']}, p = {test['p_value']:.3g}")
    if point.get("in_sample"):
        lines.append("note: the dataset has no other held-out split, so each model's threshold was fitted on the "
                     "compared images; give --score-threshold or --threshold-split for an honest F1")
    if test["small_sample"]:
        lines.append(f"note: only {report['images']} images (fewer than {SMALL_SAMPLE}): the p-value rests on the t "
                     "approximation, which a sample this small cannot check")
    lines.append(report["verdict"])
    return "\n".join(lines)
