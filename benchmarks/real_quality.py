"""How well does boxflow learn real photos? AP50 and mAP on BCCD and raccoon at an equal time budget.

The baseline every later detector is compared against: the tiny RetinaNet from scratch, the
same budget per dataset, every step through the `boxflow` command line.
- BCCD (`../shared/data/bccd`, Pascal VOC, blood cells in 3 classes): its own ImageSets splits;
  trained on `train`, scored on `test`.
- raccoon (`../shared/data/raccoon`, CSV, 1 class): 20% held out by `prepare`'s hash.

With `--weights FILE` (Keras Applications' `mobilenet_v2` ImageNet `*_notop.h5`, which cannot be
downloaded here), each dataset is trained a second time from that backbone with frozen BatchNorm.
The last line gives AP50 per dataset and run.

    python benchmarks/real_quality.py [--minutes 10] [--image-size 384] [--weights FILE] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import tempfile

from cli_runs import boxflow, evaluation, summary

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"
DATASETS = {
    "bccd": (["--format", "voc", "--input", str(SHARED_DATA / "bccd" / "BCCD")], "test"),
    "raccoon": (["--format", "csv", "--input", str(SHARED_DATA / "raccoon" / "data" / "raccoon_labels.csv"),
                 "--images", str(SHARED_DATA / "raccoon" / "images"), "--val-fraction", "0.2"], "val"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per dataset and run")
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--weights", help="mobilenet_v2 *_notop.h5 from Keras Applications, for a pretrained run")
    parser.add_argument("--workdir", help="folder to work in (default: a temporary folder)")
    args = parser.parse_args()
    if not SHARED_DATA.is_dir():
        raise SystemExit(f"the real datasets are not at {SHARED_DATA}")
    workdir = args.workdir or tempfile.mkdtemp(prefix="boxflow-real-quality-")
    runs = {"tiny": ["--backbone", "tiny"]}
    if args.weights:
        runs["mobilenet_v2+weights"] = ["--backbone", "mobilenet_v2", "--weights", args.weights,
                                        "--norm", "frozen_batch"]
    results = []
    for name, (source, split) in DATASETS.items():
        data = os.path.join(workdir, "data", name)
        boxflow("prepare", *source, "--out", data, "--num-shards", "2")
        for run_name, flags in runs.items():
            run = os.path.join(workdir, "runs", f"{name}-{run_name}")
            boxflow("train", "--data", data, "--out", run, *flags, "--image-size", str(args.image_size),
                    "--batch-size", "8", "--learning-rate", "0.002", "--anchors", "auto",
                    "--time-budget", str(args.minutes), "--eval-every", "0")
            result = evaluation(run, data, split, os.path.join(workdir, f"{name}-{run_name}.json"))
            print(f"# {name} ({split}), {run_name}: {summary(result)}", flush=True)
            results.append(f"{name} {run_name} {result['coco']['AP50']:.3f}")
    print(f"AP50 after {args.minutes:g} minutes each: " + "; ".join(results))


if __name__ == "__main__":
    main()
