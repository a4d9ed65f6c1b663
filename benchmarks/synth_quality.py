"""Does the tiny RetinaNet learn for real, and does a probabilistic box head cost accuracy and know
its own error? Deterministic and Laplace heads trained side by side for one budget on held-out synth.

The data is `boxflow synth` at its defaults: 256 px images, 0–4 objects of 3 shapes, 20–90 px,
random colours on smooth random-colour backgrounds with pixel noise, overlaps up to IoU 0.3. About
1,530 training images and 220 validation images come from one generation, split by `boxflow
prepare`'s hash; validation images are never trained on (the runs use their final weights). A
second generation (another seed, 400 images) is the fresh held-out set on which calibration is
judged: the temperatures are fitted on `val`, so judging them there would flatter them.

Both runs have the same flags and `--time-budget`; the second adds `--box-uncertainty laplace`. Then:
- both evaluated on `val` (mAP, AP75 with 95% bootstrap intervals), the probabilistic one also with
  `--variance-voting` (the paper reports its gains at high IoU: AP75);
- `boxflow compare` of the two on `val` (paired bootstrap and t-test);
- `evaluate --calibrate` of the probabilistic run on `val`, then its coverage on the fresh images.

Every step runs through the `boxflow` command line, as a user would run it. The last line reads
`mAP50 X after Y minutes …; laplace/deterministic mAP R; held-out coverage 68% → a, 95% → b`, with
the targets (mAP50 >= 0.9 within 15 minutes; the probabilistic mAP inside the deterministic one's
interval; both coverages within 5 points of nominal).

    python benchmarks/synth_quality.py [--workdir DIR] [--budget-minutes 15] [--images 1750]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from cli_runs import boxflow, boxflow_lines, evaluation, summary

HEADS = {"deterministic": [], "laplace": ["--box-uncertainty", "laplace"]}
JUDGED_LEVELS = ("0.68", "0.95")  # the coverage levels with a target


def synth_data(workdir: str, name: str, images: int, seed: int, val_fraction: float) -> str:
    raw, data = os.path.join(workdir, f"raw-{name}"), os.path.join(workdir, f"data-{name}")
    boxflow("synth", "--out", raw, "--images", str(images), "--image-size", "256", "--seed", str(seed))
    boxflow("prepare", "--format", "coco", "--input", os.path.join(raw, "annotations.json"), "--out", data,
            "--val-fraction", str(val_fraction))
    return data


def coverage_text(calibration: dict) -> str:
    return ", ".join(f"{float(level):.0%} → {calibration['coverage'][level]:.1%}" for level in calibration["coverage"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="folder to work in (default: a temporary folder)")
    parser.add_argument("--budget-minutes", type=float, default=15.0)
    parser.add_argument("--images", type=int, default=1750, help="images generated, 12%% of them held out")
    parser.add_argument("--fresh-images", type=int, default=400, help="images of the second generation")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="boxflow-synth-quality-")

    data = synth_data(workdir, "main", args.images, args.seed, 0.12)
    # All of the fresh generation lands in its 'train' split: no model trains on it.
    fresh = synth_data(workdir, "fresh", args.fresh_images, args.seed + 1, 0.0)
    with open(os.path.join(data, "dataset_info.json")) as f:
        splits = json.load(f)["splits"]
    print(f"# train images {splits['train']['images']}, held-out images {splits['val']['images']}, "
          f"fresh images {args.fresh_images}")

    runs, reports, minutes = {}, {}, {}
    for head, flags in HEADS.items():
        runs[head] = os.path.join(workdir, f"run-{head}")
        started = time.monotonic()
        boxflow("train", "--data", data, "--out", runs[head], "--backbone", "tiny", "--image-size", "256",
                "--batch-size", "16", "--learning-rate", "0.002", "--time-budget", str(args.budget_minutes),
                "--eval-every", "0", *flags)
        minutes[head] = (time.monotonic() - started) / 60  # process start-up included
        reports[head] = evaluation(runs[head], data, "val", os.path.join(workdir, f"{head}.json"))
        print(f"# {head}: {summary(reports[head])}, AP75 {reports[head]['coco']['AP75']:.3f} "
              f"({reports[head]['intervals']['AP75']['low']:.3f}-{reports[head]['intervals']['AP75']['high']:.3f})"
              f", VOC AP50 {reports[head]['voc_AP50']:.3f}", flush=True)
    voting = evaluation(runs["laplace"], data, "val", os.path.join(workdir, "laplace-voting.json"), "--variance-voting")
    print(f"# laplace with variance voting: {summary(voting)}, AP75 {voting['coco']['AP75']:.3f} "
          f"(without {reports['laplace']['coco']['AP75']:.3f}; deterministic {reports['deterministic']['coco']['AP75']:.3f})")
    compared = boxflow_lines("compare", runs["deterministic"], runs["laplace"], "--data", data, "--split", "val",
                             "--out", os.path.join(workdir, "comparison.json"))
    print(f"# compare deterministic (A) with laplace (B): {compared[-2]}")

    print(f"# laplace on val before calibration: {coverage_text(reports['laplace']['calibration'])}")
    calibrated = evaluation(runs["laplace"], data, "val", os.path.join(workdir, "laplace-calibrate.json"), "--calibrate")
    held_out = evaluation(runs["laplace"], fresh, "train", os.path.join(workdir, "laplace-fresh.json"))
    coverage = held_out["calibration"]["coverage"]
    print(f"# temperatures {', '.join(f'{t:.3f}' for t in calibrated['calibration']['temperatures'])} fitted on val; "
          f"on the {held_out['images']} fresh images ({held_out['calibration']['matched_detections']} matched "
          f"detections): {coverage_text(held_out['calibration'])}, calibration error "
          f"{held_out['calibration']['calibration_error']:.3f}")

    deterministic, laplace = reports["deterministic"], reports["laplace"]
    interval = deterministic["AP_interval"]
    inside = interval["low"] <= laplace["coco"]["AP"] <= interval["high"]
    print(f"mAP50 {deterministic['coco']['AP50']:.3f} after {minutes['deterministic']:.1f} minutes of training "
          f"(target >= 0.9 within {args.budget_minutes:g}); laplace/deterministic mAP "
          f"{laplace['coco']['AP'] / max(deterministic['coco']['AP'], 1e-9):.2f}x "
          f"({'inside' if inside else 'outside'} the deterministic interval); held-out coverage "
          + ", ".join(f"{float(level):.0%} → {coverage[level]:.1%}" for level in JUDGED_LEVELS)
          + " (target within 5 points)")


if __name__ == "__main__":
    main()
