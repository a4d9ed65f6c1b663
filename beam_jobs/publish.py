"""Moving a finished run's outputs from its staging folder into the dataset folder.

A dataset folder is complete exactly when `dataset_info.json` exists: publishing
removes the old one first and writes the new one last. Shards are renamed into
place whole, so a reader never sees a partial shard, and the staging folder (where
Beam writes) matches no shard pattern.

Only a folder prepare wrote is replaced: one carrying prepare's marker, or a `dataset_info.json`
of ours (folders prepared before the marker existed). Anything else that is not empty, such as a
folder holding a user's own TFRecords, is refused before a file is written or removed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections import Counter
from typing import Optional

from apache_beam.io.filesystems import FileSystems

from beam_jobs import file_io
from beam_jobs.prepare_settings import PrepareSettings
from beam_jobs.sources.source_plan import SourcePlan
from beam_jobs.transforms.run_outputs import REJECTED_PARTS, SUMMARY_FILE
from contracts import record_schema
from contracts.errors import BoxflowError
from contracts.label_map import format_label_map
from contracts.owned_folder import MARKER_FILE

STAGING_PREFIX = ".boxflow-staging-"
COMMAND = "prepare"


def claim_out_dir(out_dir: str) -> None:
    """Raises `BoxflowError`, having changed nothing, unless `out_dir` is missing, empty (a killed
    run's staging folders aside) or a dataset prepare wrote; then marks it as prepare's."""
    if "://" not in out_dir and os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BoxflowError(f"--out {out_dir}: exists and is not a folder")
    foreign = [name for name in _entries(out_dir) if not name.startswith(STAGING_PREFIX)]
    if foreign and not _written_by_prepare(out_dir):
        shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise BoxflowError(f"--out {out_dir}: the folder holds files boxflow prepare did not write ({shown}); "
                           "choose a new or empty folder (nothing was changed)")
    if "://" not in out_dir:
        os.makedirs(out_dir, exist_ok=True)
    file_io.write_bytes(file_io.join(out_dir, MARKER_FILE), f"{COMMAND}\n".encode())


def _entries(out_dir: str) -> list[str]:
    """The names directly in `out_dir`, hidden ones included, sorted; none when it is missing."""
    if "://" not in out_dir:
        return sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
    prefix = out_dir.rstrip("/") + "/"
    return sorted({path[len(prefix):].split("/")[0] for path in file_io.list_files(prefix + "*")})


def _written_by_prepare(out_dir: str) -> bool:
    marker = file_io.join(out_dir, MARKER_FILE)
    if file_io.exists(marker):
        return file_io.read_bytes(marker).decode("utf-8", "replace").strip() == COMMAND
    info_path = file_io.join(out_dir, record_schema.DATASET_INFO_FILE)
    if not file_io.exists(info_path):
        return False
    try:
        info = json.loads(file_io.read_bytes(info_path))
    except ValueError:
        return False
    return isinstance(info, dict) and {"schema_version", "accounting", "splits"} <= set(info)


def new_staging_dir(out_dir: str) -> str:
    """A fresh staging folder inside `out_dir`, after removing any a killed run left behind."""
    if "://" not in out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for name in os.listdir(out_dir):
            if name.startswith(STAGING_PREFIX):
                shutil.rmtree(os.path.join(out_dir, name), ignore_errors=True)
    staging = file_io.join(out_dir, f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}")
    FileSystems.mkdirs(staging)
    return staging


def publish(staging_dir: str, settings: PrepareSettings, plan: SourcePlan, splits: tuple[str, ...],
            beam_metrics: dict[str, int]) -> dict:
    """Builds `dataset_info.json`, moves every output into `settings.out_dir`; returns the info."""
    out_dir = settings.out_dir
    summary = json.loads(file_io.read_bytes(file_io.join(staging_dir, SUMMARY_FILE)))
    rejected_lines = sorted(_read_lines(file_io.join(staging_dir, REJECTED_PARTS)))
    rejections = [json.loads(line) for line in rejected_lines]
    info = dataset_info(summary, rejections, settings, plan, splits, beam_metrics)

    _remove_previous_dataset(out_dir)
    for split in splits:
        count = settings.shard_count(split)
        names = [record_schema.shard_name(split, i, count) for i in range(count)]
        for name in names:
            if not file_io.exists(file_io.join(staging_dir, name)):
                file_io.write_bytes(file_io.join(staging_dir, name), b"")  # no image hashed here: an empty shard
        FileSystems.rename([file_io.join(staging_dir, n) for n in names], [file_io.join(out_dir, n) for n in names])
    _write_atomically(file_io.join(out_dir, record_schema.REJECTED_FILE), "".join(f"{line}\n" for line in rejected_lines))
    _write_atomically(file_io.join(out_dir, record_schema.LABEL_MAP_FILE), format_label_map(summary["class_names"]))
    _write_atomically(file_io.join(out_dir, record_schema.DATASET_INFO_FILE), json.dumps(info, indent=2) + "\n")
    FileSystems.delete([staging_dir])
    return info


def dataset_info(summary: dict, rejections: list[dict], settings: PrepareSettings, plan: SourcePlan,
                 splits: tuple[str, ...], beam_metrics: dict[str, int]) -> dict:
    """Pure: the `dataset_info.json` content, with the accounting that must close."""
    statistics = summary["statistics"]
    empty = {"images": 0, "boxes": 0, "images_without_boxes": 0, "max_boxes_per_image": 0, "augmented_images": 0,
             "augmented_boxes": 0, "boxes_per_class": {}, "masks": 0, "semantic_images": 0}
    split_stats = {split: statistics["splits"].get(split, dict(empty)) for split in splits}
    for split, stats in split_stats.items():
        count = settings.shard_count(split)
        stats["shards"] = [record_schema.shard_name(split, i, count) for i in range(count)]

    image_rejections = [r for r in rejections if r["level"] == "image"]
    box_rejections = [r for r in rejections if r["level"] == "box" and not r["kept"]]
    augmented = sum(s["augmented_images"] for s in split_stats.values())
    images_written = sum(s["images"] for s in split_stats.values()) - augmented
    boxes_written = sum(s["boxes"] - s["augmented_boxes"] for s in split_stats.values())
    boxes_read = summary["boxes_read"] + sum(1 for r in plan.rejections if r.level.value == "box")
    boxes_lost = sum(r["boxes_lost"] for r in image_rejections)
    accounting = {
        "images_read": summary["images_read"],
        "images_written": images_written,
        "images_rejected": len(image_rejections),
        "boxes_read": boxes_read,
        "boxes_written": boxes_written,
        "boxes_rejected": len(box_rejections),
        "boxes_dropped_with_rejected_images": boxes_lost,
        "boxes_clipped": sum(1 for r in rejections if r["kept"]),
        "augmented_images_written": augmented,
    }
    accounting["closes"] = (
        accounting["images_read"] == images_written + len(image_rejections)
        and boxes_read == boxes_written + len(box_rejections) + boxes_lost
    )
    return {
        "schema_version": record_schema.SCHEMA_VERSION,
        "classes": _classes(summary["class_names"], plan.stuff_classes),
        "splits": split_stats,
        "source": {"format": plan.format_name, "path": plan.input_path, "images_dir": settings.images_dir},
        "accounting": accounting,
        "rejected": {
            "images": len(image_rejections),
            "boxes": len(box_rejections),
            "segments": sum(1 for r in rejections if r["level"] == "segment"),
            "by_reason": dict(sorted(Counter(r["reason"] for r in rejections).items())),
        },
        "augmentation": {
            "copies_per_train_image": settings.augment_copies,
            "seed": settings.augment_seed,
            "images_added": augmented,
            "recipe": settings.augmentation.to_json_dict() if settings.augment_copies else None,
        },
        "statistics": _named_label_pixels({k: v for k, v in statistics.items() if k != "splits"},
                                          summary["class_names"]),
        "beam": {"runner": settings.runner, "pipeline_args": settings.pipeline_args(), "metrics": beam_metrics},
    }


def _classes(class_names: list[str], stuff_classes: Optional[tuple[str, ...]]) -> list[dict]:
    """The label map's classes; for per-pixel labels each also says whether it is a thing or stuff."""
    classes = [{"id": i, "name": name} for i, name in enumerate(class_names, start=1)]
    if stuff_classes is not None:
        for entry in classes:
            entry["kind"] = "stuff" if entry["name"] in stuff_classes else "thing"
    return classes


def _named_label_pixels(statistics: dict, class_names: list[str]) -> dict:
    """Per-pixel label counts by class name, with background and void named, and as shares."""
    counts = statistics.pop("pixels_per_label", None)
    if counts:
        names = {0: "background", record_schema.IGNORE_LABEL: "void",
                 **{i: name for i, name in enumerate(class_names, start=1)}}
        total = sum(counts.values())
        statistics["pixels_per_label"] = {names[int(label)]: {"pixels": n, "share": n / total}
                                          for label, n in counts.items()}
    return statistics


def _read_lines(path: str) -> list[str]:
    if not file_io.exists(path):
        return []
    return [line for line in file_io.read_bytes(path).decode("utf-8").splitlines() if line.strip()]


def _remove_previous_dataset(out_dir: str) -> None:
    info_path = file_io.join(out_dir, record_schema.DATASET_INFO_FILE)
    if file_io.exists(info_path):
        FileSystems.delete([info_path])
    old = file_io.list_files(file_io.join(out_dir, "*-?????-of-?????.tfrecord"))
    old += [p for p in (file_io.join(out_dir, record_schema.LABEL_MAP_FILE),
                        file_io.join(out_dir, record_schema.REJECTED_FILE)) if file_io.exists(p)]
    if old:
        FileSystems.delete(old)


def _write_atomically(path: str, text: str) -> None:
    if "://" in path:
        file_io.write_bytes(path, text.encode("utf-8"))
        return
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(handle, "w") as f:
        f.write(text)
    os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the file from other users
    os.replace(temporary, path)
