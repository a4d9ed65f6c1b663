"""The picture of a comparison: per-image F1 differences and the bootstrap's mAP differences."""

from __future__ import annotations

import numpy as np

from keras_models.evaluation.model_comparison import Comparison


def write_difference_plot(comparison: Comparison, path: str) -> None:
    """Left: each image's F1 difference (B − A), sorted. Right: the histogram of the resamples' ΔmAP with
    its interval. Both with the zero line, where "no difference" sits."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    from matplotlib import pyplot

    differences = np.sort(comparison.f1_second - comparison.f1_first)
    figure, (per_image, resampled) = pyplot.subplots(1, 2, figsize=(11, 5.5), dpi=100)
    colours = np.where(differences > 0, "tab:green", np.where(differences < 0, "tab:red", "tab:gray"))
    per_image.bar(np.arange(len(differences)), differences, width=1.0, color=colours)
    per_image.axhline(0, color="black", linewidth=0.8)
    test, rank = comparison.t_test, comparison.signed_rank
    per_image.set(xlabel="images, sorted by difference", ylabel="F1 at IoU 0.5: B − A",
                  title=f"Per image: mean {test.mean_difference:+.3f}, Wilcoxon p = {rank.p_value:.2g} "
                        f"({test.samples} images)")
    ap = comparison.bootstrap["AP"]
    if ap is not None:
        resampled.hist(ap.samples, bins=40, color="tab:blue", alpha=0.7)
        for end in (ap.low, ap.high):
            resampled.axvline(end, color="tab:blue", linestyle="--", linewidth=1)
        resampled.axvline(0, color="black", linewidth=0.8)
        resampled.set(title=f"ΔmAP {ap.difference:+.3f}, {ap.level:.0%} interval [{ap.low:+.3f}, {ap.high:+.3f}]")
    resampled.set(xlabel="mAP: B − A over bootstrap resamples", ylabel="resamples")
    # The verdict names one result per metric; one line each keeps it inside the figure.
    figure.suptitle("\n".join(comparison.verdict.replace(": ", ":\n", 1).split("; ")), fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
