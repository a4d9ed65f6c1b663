"""Mask R-CNN against Faster R-CNN: the same backbone, image size, data and time budget, side by side.

`boxflow synth --masks` at 256 px (1,500 images, 300 held out; each shape's visible mask, its box
that mask's extent), prepared once. Both detectors train from scratch through the command line as a
new user runs them: `boxflow train --model M --backbone tiny --image-size 256 --time-budget
MINUTES`, every other setting at its default and no `--config` (both sized to the run), then are
evaluated on the held-out images and exported.

Each run prints box mAP50, mAP and AP75 with their 95% bootstrap intervals over images, Mask R-CNN
also its mask (COCO segm) mAP50, mAP and AP75, the median training images/s of its epochs and the
export's p50 latency at batch 1. The last line gives Mask R-CNN's segm mAP over its box mAP, its
box mAP over Faster R-CNN's (what the mask stage costs or gives the boxes) and its step time over
Faster R-CNN's, with the target: segm mAP50 >= 0.8 in 15 minutes.

    python benchmarks/mask_quality.py [--minutes 15] [--images 1500] [--workdir DIR]
"""

from __future__ import annotations

import os
import statistics

from cli_runs import boxflow, boxflow_lines, budget_arguments, evaluation, synth_prepared
from detector_quality import RATE, interval_text, serving_p50_ms

MODELS = ("mask_rcnn", "faster_rcnn")  # the one with the target first
HELD_OUT = 300


def mask_text(report: dict, name: str) -> str:
    segm = report["segm"]
    value, interval = segm["coco"][name], segm.get("intervals", {}).get(name)
    return f"mask {name} {value:.3f}" + (f" [{interval['low']:.3f}-{interval['high']:.3f}]" if interval else "")


def main() -> None:
    args = budget_arguments(__doc__.splitlines()[0], "boxflow-mask-quality-")
    workdir = args.workdir
    data = synth_prepared(workdir, args.images, HELD_OUT, "masks")
    reports, speeds = {}, {}
    for model in MODELS:
        run = os.path.join(workdir, "runs", model)
        lines = boxflow_lines("train", "--model", model, "--backbone", "tiny", "--image-size", "256",
                              "--time-budget", str(args.minutes), "--data", data, "--out", run)
        speeds[model] = statistics.median(float(match.group(1)) for line in lines for match in [RATE.search(line)]
                                          if match)
        reports[model] = report = evaluation(run, data, "val", os.path.join(workdir, f"{model}.json"))
        model_dir = os.path.join(workdir, "models", model)
        boxflow("export", "--run", run, "--out", model_dir)
        texts = [interval_text(report, name) for name in ("AP50", "AP", "AP75")]
        if "segm" in report:
            texts += [mask_text(report, name) for name in ("AP50", "AP", "AP75")]
        print(f"# {model}: " + ", ".join(texts) + f"; median {speeds[model]:.1f} training images/s; "
              f"serving p50 {serving_p50_ms(model_dir, data, 'val'):.1f} ms", flush=True)
    boxes = {model: reports[model]["coco"]["AP"] for model in MODELS}
    masks = reports["mask_rcnn"]["segm"]["coco"]
    print(f"mask_rcnn segm/box mAP {masks['AP'] / max(boxes['mask_rcnn'], 1e-9):.2f}x, "
          f"box mAP mask_rcnn/faster_rcnn {boxes['mask_rcnn'] / max(boxes['faster_rcnn'], 1e-9):.2f}x, "
          f"step time mask_rcnn/faster_rcnn {speeds['faster_rcnn'] / speeds['mask_rcnn']:.2f}x; "
          f"mask_rcnn segm mAP50 {masks['AP50']:.3f} after {args.minutes:g} minutes (target >= 0.8)")


if __name__ == "__main__":
    main()
