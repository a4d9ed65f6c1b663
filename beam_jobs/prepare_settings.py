"""The settings of one `boxflow prepare` run, checked once where they are made."""

from __future__ import annotations

import dataclasses
from typing import Optional

from beam_jobs.offline_augment import ImageAugmentation
from beam_jobs.sources.csv_rows import DEFAULT_COLUMNS
from contracts.errors import BoxflowError

FORMATS = ("coco", "coco_panoptic", "voc", "label_pngs", "yolo", "csv", "tfrecord")
DIRECT_RUNNER = "DirectRunner"


@dataclasses.dataclass(frozen=True)
class PrepareSettings:
    source_format: str
    input_path: str
    out_dir: str
    images_dir: Optional[str] = None
    val_fraction: float = 0.1
    num_shards: int = 8
    label_map: Optional[str] = None
    csv_columns: tuple[str, ...] = DEFAULT_COLUMNS
    use_source_splits: bool = True
    drop_emptied_images: bool = False
    max_reject_fraction: float = 0.1
    augment_copies: int = 0
    augment_seed: int = 0
    # The recipe of the copies (the application's `pipeline.augment` ops); needed with augment_copies,
    # dropped without them.
    augmentation: Optional[ImageAugmentation] = None
    runner: str = DIRECT_RUNNER
    workers: int = 2
    beam_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.source_format not in FORMATS:
            raise BoxflowError(f"--format must be one of {', '.join(FORMATS)}, got {self.source_format!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise BoxflowError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.num_shards < 1:
            raise BoxflowError(f"--num-shards must be at least 1, got {self.num_shards}")
        if not 0.0 <= self.max_reject_fraction <= 1.0:
            raise BoxflowError(f"--max-reject-fraction must be in [0, 1], got {self.max_reject_fraction}")
        if self.augment_copies < 0:
            raise BoxflowError(f"--augment-copies must be 0 or more, got {self.augment_copies}")
        if self.augment_copies and self.augmentation is None:
            raise BoxflowError("augmentation: augment_copies asks for augmented copies, and no recipe is given")
        if not self.augment_copies:
            # The settings are pickled into every worker, and unpickling a recipe imports TensorFlow
            # there (5 s of a 6 s local run on 10 images); without copies nothing would use it.
            object.__setattr__(self, "augmentation", None)
        if self.workers < 1:
            raise BoxflowError(f"--workers must be at least 1, got {self.workers}")

    def shard_count(self, split: str) -> int:
        """Training gets `num_shards`; smaller evaluation splits a quarter of that."""
        return self.num_shards if split == "train" else max(1, self.num_shards // 4)

    def pipeline_args(self) -> list[str]:
        """Beam pipeline options: the runner, local parallelism, and every pass-through flag."""
        args = [f"--runner={self.runner}"]
        if self.runner == DIRECT_RUNNER:
            # Worker processes come from prepare_job._local_runner's environment, not a running mode.
            args += [f"--direct_num_workers={self.workers}", "--default_sdk_harness_log_level=WARNING"]
        return args + list(self.beam_args)
