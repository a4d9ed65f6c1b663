"""Panoptic FPN, the semantic FPN and Mask R-CNN: the same data, image size and time budget, side by side.

`boxflow synth --stuff` at 256 px (1,500 images, 300 held out; shapes over sky, ground and water,
every pixel labelled), prepared once from its COCO panoptic labels. Each model trains from scratch
through the command line as a new user runs it: `boxflow train --model M --backbone tiny
--image-size 256 --time-budget MINUTES`, every other setting at its default and no `--config`, then
is evaluated on the held-out images.

Each run prints what its task is scored by, with 95% bootstrap intervals over images: the semantic
FPN its mIoU and pixel accuracy; Mask R-CNN its box and mask (COCO segm) mAP; Panoptic FPN its PQ,
PQ over the things and over the stuff, and its box and mask mAP; and each its median training
images/s. The last line gives Panoptic FPN's PQ with its things' and stuff's, the semantic FPN's
mIoU, and the segm mAP of Panoptic FPN over Mask R-CNN's, against the targets: PQ >= 0.6 and
mIoU >= 0.8 in 15 minutes each.

    python benchmarks/panoptic_quality.py [--minutes 15] [--images 1500] [--workdir DIR]
"""

from __future__ import annotations

import os
import statistics

from cli_runs import boxflow_lines, budget_arguments, evaluation, synth_prepared
from detector_quality import RATE, interval_text
from mask_quality import mask_text

MODELS = ("panoptic_fpn", "semantic_fpn", "mask_rcnn")
HELD_OUT = 300


def with_interval(value: float, interval) -> str:
    return f"{value:.3f}" + (f" [{interval['low']:.3f}-{interval['high']:.3f}]" if interval else "")


def scores_text(report: dict) -> str:
    """What the report scores, as one line."""
    if "semantic" in report:
        semantic = report["semantic"]
        intervals = semantic.get("intervals", {})
        return (f"mIoU {with_interval(semantic['mIoU'], intervals.get('mIoU'))}, pixel accuracy "
                f"{with_interval(semantic['pixel_accuracy'], intervals.get('pixel_accuracy'))}")
    texts = [interval_text(report, "AP"), mask_text(report, "AP"), mask_text(report, "AP50")]
    if "panoptic" in report:
        panoptic = report["panoptic"]
        texts = [f"PQ {group} {with_interval(panoptic[group]['PQ'], panoptic['intervals'][group]['PQ'])}"
                 for group in ("all", "things", "stuff")] + texts
    return ", ".join(texts)


def main() -> None:
    args = budget_arguments(__doc__.splitlines()[0], "boxflow-panoptic-quality-")
    workdir = args.workdir
    data = synth_prepared(workdir, args.images, HELD_OUT, "stuff")
    reports = {}
    for model in MODELS:
        run = os.path.join(workdir, "runs", model)
        lines = boxflow_lines("train", "--model", model, "--backbone", "tiny", "--image-size", "256",
                              "--time-budget", str(args.minutes), "--data", data, "--out", run)
        speed = statistics.median(float(match.group(1)) for line in lines for match in [RATE.search(line)] if match)
        reports[model] = evaluation(run, data, "val", os.path.join(workdir, f"{model}.json"))
        print(f"# {model}: {scores_text(reports[model])}; median {speed:.1f} training images/s", flush=True)
    panoptic = reports["panoptic_fpn"]["panoptic"]
    segm = {model: reports[model]["segm"]["coco"]["AP"] for model in ("panoptic_fpn", "mask_rcnn")}
    print(f"segm mAP panoptic_fpn/mask_rcnn {segm['panoptic_fpn'] / max(segm['mask_rcnn'], 1e-9):.2f}x; "
          f"semantic_fpn mIoU {reports['semantic_fpn']['semantic']['mIoU']:.3f} (target >= 0.8); "
          f"panoptic_fpn PQ {panoptic['all']['PQ']:.3f} (things {panoptic['things']['PQ']:.3f}, stuff "
          f"{panoptic['stuff']['PQ']:.3f}) after {args.minutes:g} minutes each (target >= 0.6)")


if __name__ == "__main__":
    main()
