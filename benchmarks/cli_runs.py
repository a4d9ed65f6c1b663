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
