"""What the quality benchmarks share: `boxflow` commands run as a user runs them, and their reports."""

from __future__ import annotations

import json
import subprocess
import sys
import time


def boxflow(*args: str) -> None:
    """Runs `python -m boxflow ARGS`, failing on a non-zero exit, and prints how long it took."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "boxflow", *args], check=True)
    print(f"# boxflow {args[0]}: {time.monotonic() - started:.0f}s", flush=True)


def boxflow_lines(*args: str) -> list[str]:
    """`boxflow(*args)`, its output echoed as it comes and returned as lines."""
    started = time.monotonic()
    lines = []
    with subprocess.Popen([sys.executable, "-m", "boxflow", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, ["boxflow", *args])
    print(f"# boxflow {args[0]}: {time.monotonic() - started:.0f}s", flush=True)
    return lines


def evaluation(run: str, data: str, split: str, report: str, *flags: str) -> dict:
    """`boxflow evaluate` of `run` on `split` (with `flags`), its JSON report read back."""
    boxflow("evaluate", "--run", run, "--data", data, "--split", split, "--out", report, *flags)
    with open(report) as f:
        return json.load(f)


def summary(result: dict) -> str:
    """`mAP50 X, mAP Y (95% interval L-H)` of an evaluation report."""
    interval = result["AP_interval"]
    return (f"mAP50 {result['coco']['AP50']:.3f}, mAP {result['coco']['AP']:.3f} "
            f"(95% interval {interval['low']:.3f}-{interval['high']:.3f})")


def budget_arguments(description: str, prefix: str):
    """The arguments of a side-by-side benchmark under a time budget: `minutes` per run, `images`
    generated (300 held out) and `workdir` (a fresh temporary folder named after `prefix` by default)."""
    import argparse
    import os
    import tempfile

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget of each run")
    parser.add_argument("--images", type=int, default=1500, help="synth images generated, 300 of them held out")
    parser.add_argument("--workdir", help="folder to work in (default: a temporary folder)")
    args = parser.parse_args()
    args.workdir = args.workdir or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(args.workdir, exist_ok=True)
    return args


def synth_prepared(workdir: str, images: int, held_out: int, labels: str) -> str:
    """`boxflow synth --LABELS` (`masks` or `stuff`) at 256 px, prepared from its COCO instances (or,
    with stuff, its COCO panoptic labels) with `held_out` images in val; the data folder."""
    import os

    raw, data = os.path.join(workdir, "raw"), os.path.join(workdir, "data")
    boxflow("synth", "--out", raw, "--images", str(images), "--image-size", "256", "--seed", "7", f"--{labels}")
    source = ("coco_panoptic", "panoptic.json") if labels == "stuff" else ("coco", "annotations.json")
    boxflow("prepare", "--format", source[0], "--input", os.path.join(raw, source[1]), "--out", data,
            "--val-fraction", str(held_out / images))
    return data
