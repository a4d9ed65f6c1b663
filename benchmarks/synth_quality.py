"""Does the tiny RetinaNet learn for real? mAP50 on held-out synth images after a fixed budget.

The data is `boxflow synth` at its defaults: 256 px images, 0–4 objects of 3 shapes,
20–90 px, random colours on smooth random-colour backgrounds with pixel noise, overlaps
up to IoU 0.3. About 1,530 training images and 220 validation images come from one
generation, split by `boxflow prepare`'s hash; validation images are never trained on
(the run uses the final weights, not the best by validation).

Every step runs through the `boxflow` command line, as a user would run it. The last
line reads `mAP50 X after Y minutes of training (target >= 0.9 within 15)`.

    python benchmarks/synth_quality.py [--workdir DIR] [--budget-minutes 15] [--images 1750]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from cli_runs import boxflow, evaluation, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="folder to work in (default: a temporary folder)")
    parser.add_argument("--budget-minutes", type=float, default=15.0)
    parser.add_argument("--images", type=int, default=1750, help="images generated, 12%% of them held out")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="boxflow-synth-quality-")
    raw, data, run = (os.path.join(workdir, name) for name in ("raw", "data", "run"))

    boxflow("synth", "--out", raw, "--images", str(args.images), "--image-size", "256", "--seed", str(args.seed))
    boxflow("prepare", "--format", "coco", "--input", os.path.join(raw, "annotations.json"), "--out", data,
            "--val-fraction", "0.12")
    with open(os.path.join(data, "dataset_info.json")) as f:
        splits = json.load(f)["splits"]
    print(f"# train images {splits['train']['images']}, held-out images {splits['val']['images']}")

    started = time.monotonic()
    boxflow("train", "--data", data, "--out", run, "--backbone", "tiny", "--image-size", "256",
            "--batch-size", "16", "--learning-rate", "0.002", "--time-budget", str(args.budget_minutes),
            "--eval-every", "0")
    minutes = (time.monotonic() - started) / 60  # process start-up included

    result = evaluation(run, data, "val", os.path.join(workdir, "report.json"))
    print(f"# {summary(result)}, VOC AP50 {result['voc_AP50']:.3f}, per class AP50 "
          + ", ".join(f"{name} {values['AP50']:.3f}" for name, values in result["per_class"].items()))
    print(f"mAP50 {result['coco']['AP50']:.3f} after {minutes:.1f} minutes of training "
          f"(target >= 0.9 within {args.budget_minutes:g})")


if __name__ == "__main__":
    main()
