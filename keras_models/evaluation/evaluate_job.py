"""`run()` for `boxflow evaluate`: detections from a run directory or a SavedModel, then the report."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from typing import Callable, Optional, Sequence

from contracts.atomic_file import write_json_atomically
from contracts.errors import BoxflowError
from contracts.export_schema import ASSETS_EXTRA, BOX_CALIBRATION_FILE
from keras_models.evaluation import coco_metrics
from keras_models.evaluation.bootstrap import bootstrap_intervals
from keras_models.evaluation.calibration import (MATCH_IOU, calibration_report, fit_temperatures, match_edges,
                                                 with_temperatures, write_reliability_plot)
from keras_models.evaluation.evaluation_image import EvaluationImage
from keras_models.evaluation.panoptic_evaluation import format_panoptic_metrics, panoptic_metrics
from keras_models.evaluation.pr_curves import write_pr_curves
from keras_models.evaluation.semantic_evaluation import (collect_confusions, format_semantic_metrics, model_segmenter,
                                                         semantic_metrics)
from keras_models.evaluation.voc_ap import voc_average_precision
from keras_models.ops.box_uncertainty import NO_UNCERTAINTY
from pipeline.dataset import read_dataset_info, shard_files, stuff_classes

REPORT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class EvaluateSettings:
    data_dir: str
    run_dir: Optional[str] = None
    model_dir: Optional[str] = None
    split: str = "val"
    report_path: Optional[str] = None
    batch_size: int = 16
    resamples: int = 200
    seed: int = 0
    # Fit the box uncertainty's temperatures and store them in the run directory: on
    # `calibrate_split`, or, when None, on the evaluated split itself (an in-sample report, which
    # says so).
    calibrate: bool = False
    calibrate_split: Optional[str] = None
    # Evaluate the run's model with variance voting, whatever it was trained with.
    variance_voting: bool = False

    def __post_init__(self) -> None:
        if (self.run_dir is None) == (self.model_dir is None):
            raise BoxflowError("give exactly one of --run RUN_DIR and --model SAVEDMODEL_DIR")
        if self.batch_size < 1:
            raise BoxflowError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.resamples < 0:
            raise BoxflowError(f"--resamples must be 0 (no interval) or more, got {self.resamples}")
        if self.calibrate_split and not self.calibrate:
            raise BoxflowError("--calibrate-split names the split --calibrate fits on: give --calibrate too")
        if self.calibrate and not self.run_dir:
            raise BoxflowError("--calibrate stores its temperatures in a run directory: give --run, not --model")
        if self.variance_voting and not self.run_dir:
            raise BoxflowError("--variance-voting changes the run's model: give --run; an export votes as it was "
                               "trained to")

    @property
    def report(self) -> str:
        """The JSON report's path: `--out`, else `RUN_DIR/evaluation/SPLIT.json`, else `./evaluation-SPLIT.json`."""
        if self.report_path:
            return self.report_path
        if self.run_dir:
            return os.path.join(self.run_dir, "evaluation", f"{self.split}.json")
        return f"evaluation-{self.split}.json"


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evaluate_images(images: Sequence[EvaluationImage], class_names: Sequence[str], resamples: int = 200,
                    seed: int = 0, stuff_ids: Sequence[int] = ()):
    """The metrics of a report, and the pycocotools evaluation they came from (for the curves).
    `stuff_ids`: the label ids of the stuff classes, for a panoptic model's PQ."""
    evaluation = coco_metrics.evaluate_coco(images, len(class_names))
    per_class = coco_metrics.per_class(evaluation, class_names)
    voc = voc_average_precision(images, class_names)
    defined_voc = [value for value in voc.values() if value is not None]
    metrics = {
        "images": len(images),
        "boxes": int(sum(len(image.boxes) for image in images)),
        "detections": int(sum(len(image.detection_boxes) for image in images)),
        "coco": coco_metrics.summary(evaluation),
        "voc_AP50": sum(defined_voc) / len(defined_voc) if defined_voc else None,
        "per_class": {name: {**per_class[name], "VOC_AP50": voc[name]} for name in class_names},
    }
    if resamples:
        intervals = _intervals(evaluation, resamples, seed)
        metrics["AP_interval"] = intervals["AP"]
        metrics["intervals"] = intervals
    if any(image.detection_masks is not None for image in images):
        metrics["segm"] = _mask_metrics(images, class_names, resamples, seed)
    panoptic = [image.panoptic_counts for image in images if image.panoptic_counts is not None]
    if panoptic:
        metrics["panoptic"] = panoptic_metrics(panoptic, class_names, stuff_ids, resamples, seed)
    return metrics, evaluation


def _intervals(evaluation, resamples: int, seed: int) -> dict:
    return {name: None if interval is None else
            {"low": interval.low, "high": interval.high, "level": interval.level,
             "resamples": interval.resamples, "method": "bootstrap over images"}
            for name, interval in bootstrap_intervals(evaluation, resamples, seed=seed).items()}


def _mask_metrics(images: Sequence[EvaluationImage], class_names: Sequence[str], resamples: int, seed: int) -> dict:
    """A mask model's COCO segm metrics (mask IoU), per class and with intervals like the boxes';
    `{"skipped": why}` when some images have no ground-truth masks to score against."""
    unmasked = sum(image.masks is None for image in images)
    if unmasked:
        return {"skipped": f"{unmasked} of {len(images)} images have no instance masks in their records"}
    evaluation = coco_metrics.evaluate_coco(images, len(class_names), iou_type="segm")
    segm = {"coco": coco_metrics.summary(evaluation), "per_class": coco_metrics.per_class(evaluation, class_names)}
    if resamples:
        segm["intervals"] = _intervals(evaluation, resamples, seed)
    return segm


def run(settings: EvaluateSettings, progress: Callable[[str], None] = _to_stderr) -> dict:
    """Evaluates, writes the JSON report and the PR-curve PNG beside it, returns the report."""
    from keras_models.evaluation.detection_source import (check_dataset_classes, collect, model_detector,
                                                           saved_model_detector)
    from keras_models.runs.run_directory import load_trained_model

    started = time.monotonic()
    shard_files(settings.data_dir, settings.split)  # fails fast, before a model is loaded
    if settings.run_dir:
        # Calibrating fits the temperatures afresh, on the model's own stddev.
        trained = load_trained_model(settings.run_dir, calibrated=not settings.calibrate)
        source = {"run": settings.run_dir, "weights": trained.weights_path}
        if not trained.model.FINDS_OBJECTS:
            return _run_semantic(settings, model_segmenter(trained.model), trained.class_names, source, started,
                                 progress)
        detect, class_names = model_detector(trained.model), trained.class_names
        box_uncertainty = getattr(trained.model, "box_uncertainty", NO_UNCERTAINTY)
        for flag, asked in (("--calibrate", settings.calibrate), ("--variance-voting", settings.variance_voting)):
            if asked and box_uncertainty == NO_UNCERTAINTY:
                raise BoxflowError(f"{flag}: the model of {settings.run_dir} predicts no box uncertainty; "
                                   "train it with --box-uncertainty laplace or normal")
        if settings.variance_voting:
            trained.model.nms = dataclasses.replace(trained.model.nms, variance_voting=True)
    else:
        exported = saved_model_detector(settings.model_dir)
        source = {"model": settings.model_dir}
        if exported.labels_pixels:
            return _run_semantic(settings, exported.detect, exported.class_names, source, started, progress)
        detect, class_names, box_uncertainty = exported.detect, exported.class_names, exported.box_uncertainty
    check_dataset_classes(settings.data_dir, class_names, settings.run_dir or settings.model_dir)

    progress(f"[evaluate] detecting on '{settings.split}' of {settings.data_dir}")
    images = collect(settings.data_dir, settings.split, detect, settings.batch_size,
                     progress=lambda done: progress(f"[evaluate] {done} images"))
    if settings.calibrate:
        fit_split = settings.calibrate_split or settings.split
        fit_images = images
        if fit_split != settings.split:
            progress(f"[evaluate] detecting on '{fit_split}' to fit the temperatures on")
            fit_images = collect(settings.data_dir, fit_split, detect, settings.batch_size,
                                 progress=lambda done: progress(f"[evaluate] {done} images"))
        images = with_temperatures(images, _fit_temperatures(fit_images, fit_split, box_uncertainty, settings,
                                                             progress))
    metrics, evaluation = evaluate_images(images, class_names, settings.resamples, settings.seed,
                                          stuff_classes(read_dataset_info(settings.data_dir)))

    report_path = settings.report
    os.makedirs(os.path.dirname(os.path.abspath(report_path)), exist_ok=True)
    curves_path = os.path.splitext(report_path)[0] + ".pr_curves.png"
    write_pr_curves(evaluation, class_names, curves_path)
    report = {"report_version": REPORT_VERSION, **source, "data": settings.data_dir, "split": settings.split,
              **metrics, "pr_curves": curves_path}
    if box_uncertainty != NO_UNCERTAINTY:
        report["calibration"] = {**calibration_report(images, box_uncertainty),
                                 **_temperatures_provenance(settings)}
        if report["calibration"]["matched_detections"]:
            report["calibration"]["reliability_plot"] = os.path.splitext(report_path)[0] + ".calibration.png"
            write_reliability_plot(report["calibration"], report["calibration"]["reliability_plot"])
    report["seconds"] = round(time.monotonic() - started, 1)
    write_json_atomically(report_path, report)
    return report


def _run_semantic(settings: EvaluateSettings, segment, class_names: tuple[str, ...], source: dict, started: float,
                  progress: Callable[[str], None]) -> dict:
    """A semantic model's report: mIoU, per-class IoU and pixel accuracy with their intervals."""
    from keras_models.evaluation.detection_source import check_dataset_classes

    for flag, asked in (("--calibrate", settings.calibrate), ("--variance-voting", settings.variance_voting)):
        if asked:
            raise BoxflowError(f"{flag} is for a detector's boxes; the model of {settings.run_dir or settings.model_dir} "
                               "labels pixels")
    check_dataset_classes(settings.data_dir, class_names, settings.run_dir or settings.model_dir)
    progress(f"[evaluate] segmenting '{settings.split}' of {settings.data_dir}")
    matrices = collect_confusions(settings.data_dir, settings.split, segment, len(class_names) + 1,
                                  settings.batch_size, progress=lambda done: progress(f"[evaluate] {done} images"))
    report = {"report_version": REPORT_VERSION, **source, "data": settings.data_dir, "split": settings.split,
              "semantic": semantic_metrics(matrices, class_names, settings.resamples, settings.seed)}
    report["seconds"] = round(time.monotonic() - started, 1)
    os.makedirs(os.path.dirname(os.path.abspath(settings.report)), exist_ok=True)
    write_json_atomically(settings.report, report)
    return report


def _fit_temperatures(images: list[EvaluationImage], split: str, box_uncertainty: str, settings: EvaluateSettings,
                      progress: Callable[[str], None]) -> tuple[float, ...]:
    """Fits the per-edge temperatures on `images` (of `split`) and stores them in the run directory."""
    from keras_models.runs.run_directory import write_box_calibration

    edges = match_edges(images)
    if not len(edges.truth):
        raise BoxflowError(f"--calibrate: no detection on '{split}' matches a ground-truth box at IoU "
                           f"{MATCH_IOU}; there is nothing to fit the temperatures on")
    temperatures = fit_temperatures(edges, box_uncertainty)
    path = write_box_calibration(settings.run_dir, {
        "temperatures": list(temperatures), "distribution": box_uncertainty, "split": split,
        "data": settings.data_dir, "matched_detections": len(edges.truth), "edges": ["xmin", "ymin", "xmax", "ymax"]})
    progress(f"[evaluate] stddev temperatures (xmin, ymin, xmax, ymax) "
             f"{', '.join(f'{value:.3f}' for value in temperatures)} fitted on {len(edges.truth)} matched detections "
             f"of '{split}'; wrote {path}")
    return temperatures


def _temperatures_provenance(settings: EvaluateSettings) -> dict:
    """Where the temperatures in use were fitted, and whether that is these very images (in-sample)."""
    path = (os.path.join(settings.run_dir, BOX_CALIBRATION_FILE) if settings.run_dir
            else os.path.join(settings.model_dir, ASSETS_EXTRA, BOX_CALIBRATION_FILE))
    if not os.path.exists(path):
        return {"temperatures": None, "fitted_on": None, "in_sample": False}
    with open(path) as f:
        stored = json.load(f)
    fitted_on = {"data": stored.get("data"), "split": stored.get("split")}
    in_sample = (fitted_on["split"] == settings.split and fitted_on["data"] is not None
                 and os.path.realpath(fitted_on["data"]) == os.path.realpath(settings.data_dir))
    return {"temperatures": stored["temperatures"], "fitted_on": fitted_on, "in_sample": in_sample}


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def format_report(report: dict) -> str:
    """The report as a person reads it in a terminal."""
    if "semantic" in report:
        return "\n".join(format_semantic_metrics(report["semantic"]))
    coco = report["coco"]
    lines = [f"{report['images']} images, {report['boxes']} boxes, {report['detections']} detections"]
    lines += [f"{name:<10} {_number(coco[name])}" for name in coco_metrics.STAT_NAMES]
    lines.append(f"{'VOC AP50':<10} {_number(report['voc_AP50'])}")
    for name, interval in report.get("intervals", {}).items():
        if interval:
            lines.append(f"{name} {interval['level']:.0%} interval [{interval['low']:.3f}, {interval['high']:.3f}] "
                         f"({interval['resamples']} bootstrap resamples over images)")
    lines.append(f"{'class':<16} {'AP':>6} {'AP50':>6} {'VOC AP50':>9}")
    for name, values in report["per_class"].items():
        lines.append(f"{name:<16} {_number(values['AP']):>6} {_number(values['AP50']):>6} "
                     f"{_number(values['VOC_AP50']):>9}")
    lines += _format_mask_metrics(report.get("segm"))
    if "panoptic" in report:
        lines += format_panoptic_metrics(report["panoptic"])
    calibration = report.get("calibration")
    if calibration and calibration["matched_detections"]:
        coverage = ", ".join(f"{float(level):.0%} → {observed:.1%}" for level, observed in calibration["coverage"].items())
        lines.append(f"box edge calibration ({calibration['distribution']}, the {calibration['matched_detections']} "
                     f"detections matched at IoU >= {calibration['match_iou']}; unmatched ones, the largest errors, "
                     f"are not counted): interval coverage {coverage}; calibration error "
                     f"{calibration['calibration_error']:.3f}; mean NLL {calibration['mean_negative_log_likelihood']:.3f}")
        if calibration.get("in_sample"):
            lines.append(f"  IN-SAMPLE: the temperatures were fitted on these same images ('{report['split']}'); "
                         "fit them on another split (--calibrate-split) for an honest coverage")
        elif calibration.get("fitted_on"):
            lines.append(f"  temperatures fitted on '{calibration['fitted_on']['split']}' of "
                         f"{calibration['fitted_on']['data']}")
    return "\n".join(lines)


def _format_mask_metrics(segm: Optional[dict]) -> list[str]:
    if segm is None:
        return []
    if "skipped" in segm:
        return [f"masks: not scored: {segm['skipped']}"]
    coco = segm["coco"]
    lines = ["masks (COCO segm, mask IoU):"]
    lines += [f"  {name:<10} {_number(coco[name])}" for name in coco_metrics.STAT_NAMES]
    interval = segm.get("intervals", {}).get("AP")
    if interval:
        lines.append(f"  AP {interval['level']:.0%} interval [{interval['low']:.3f}, {interval['high']:.3f}]")
    lines += [f"  {name:<16} AP {_number(values['AP'])} AP50 {_number(values['AP50'])}"
              for name, values in segm["per_class"].items()]
    return lines
