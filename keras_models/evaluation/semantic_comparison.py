"""Is semantic model B better than A on the same images? A paired bootstrap of mIoU and pixel
accuracy over images, judged with Holm's correction across the two.

Both scores pool every pixel of the resampled images (as `evaluate` scores them), so a resample
draws images, sums each model's per-image confusion matrices over the draw, and scores both on the
same draw (`model_comparison`'s pairing).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from keras_models.evaluation.model_comparison import ALPHA, PairedDifference, judged, paired_differences
from keras_models.evaluation.semantic_evaluation import INTERVAL_METRICS
from keras_models.evaluation.semantic_metrics import ConfusionMatrix
from keras_models.evaluation.signed_rank_test import holm_adjusted


def compare_semantic(first: Sequence[ConfusionMatrix], second: Sequence[ConfusionMatrix], resamples: int = 1000,
                     level: float = 0.95, seed: int = 0) -> dict:
    """The JSON-ready comparison of two models' per-image confusion matrices (same images, same
    order): `{"images", "bootstrap": {metric: {A, B, difference, low, high, ...}}, "holm", "verdict"}`."""
    if len(first) != len(second):
        raise ValueError(f"the two models were scored on different images ({len(first)} and {len(second)})")
    if len(first) < 2:
        raise ValueError(f"comparing needs at least 2 images, got {len(first)}")
    differences = paired_differences([_scorer(first), _scorer(second)], len(first), INTERVAL_METRICS, resamples,
                                     level, seed)
    adjusted = holm_adjusted({name: paired.p_value for name, paired in differences.items() if paired is not None})
    bootstrap = {name: None if paired is None else {
        "A": paired.first, "B": paired.second, "difference": paired.difference, "low": paired.low,
        "high": paired.high, "level": paired.level, "B_wins": paired.second_wins, "p_value": paired.p_value,
        "holm_p_value": adjusted[name], "resamples_defined": int(len(paired.samples))}
        for name, paired in differences.items()}
    return {"images": len(first), "bootstrap": {"resamples": resamples, "method": "paired bootstrap over images",
                                                **bootstrap},
            "holm": {"alpha": ALPHA, "tests": sorted(adjusted)}, "verdict": _verdict(differences, adjusted)}


def _scorer(matrices: Sequence[ConfusionMatrix]):
    """`weights [R, N]` (draws per image) → `{metric: [R] scores}` (NaN where undefined)."""
    counts = np.stack([matrix.counts for matrix in matrices])
    unknown = np.stack([matrix.unknown_predictions for matrix in matrices])

    def score(weights: np.ndarray) -> dict[str, np.ndarray]:
        scores = [ConfusionMatrix.summed(counts, unknown, row).scores() for row in weights]
        return {name: np.array([np.nan if one[name] is None else one[name] for one in scores])
                for name in INTERVAL_METRICS}

    return score


def _verdict(differences: dict[str, Optional[PairedDifference]], adjusted: dict[str, float]) -> str:
    parts = []
    for name, paired in differences.items():
        if paired is None:
            parts.append(f"{name}: undefined (no labelled pixel)")
            continue
        parts.append(f"{name}: {judged(paired.difference, adjusted[name])} (Δ {paired.difference:+.3f}, "
                     f"{paired.level:.0%} interval {paired.low:+.3f} to {paired.high:+.3f}, "
                     f"Holm p {adjusted[name]:.2g})")
    return f"B against A, Holm-corrected over {len(adjusted)} tests at {ALPHA:.0%}: " + "; ".join(parts)


def format_semantic_comparison(report: dict) -> str:
    """The comparison as a person reads it in a terminal."""
    lines = [f"{report['images']} images with per-pixel labels of '{report['split']}' in {report['data']}"]
    names = [name for name in INTERVAL_METRICS if report["bootstrap"].get(name)]
    for letter in ("A", "B"):
        metrics = "  ".join(f"{name} {report['bootstrap'][name][letter]:.3f}" for name in names)
        lines.append(f"{letter}  {report[letter].get('run') or report[letter].get('model')}  {metrics}")
    for name in names:
        paired = report["bootstrap"][name]
        lines.append(f"Δ{name} {paired['difference']:+.3f}  {paired['level']:.0%} interval [{paired['low']:+.3f}, "
                     f"{paired['high']:+.3f}]  B higher in {paired['B_wins']:.0%} of "
                     f"{report['bootstrap']['resamples']} paired resamples")
    lines.append(report["verdict"])
    return "\n".join(lines)
