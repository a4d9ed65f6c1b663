"""Which records each input pipeline of a distribution strategy reads, and how many.

Sharding across input pipelines (`strategy.distribute_datasets_from_function`): by FILE when a
split has at least as many shards as input pipelines, so each worker reads whole files; by DATA
(every worker reads all files and keeps every P-th record) otherwise, so no worker is left
without input.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import tensorflow as tf

from pipeline.as_written import as_written


class PipelineShare(NamedTuple):
    """The files one input pipeline reads, and whether it then keeps only every P-th record."""
    files: list[str]
    by_record: bool


def auto_shard_policy(num_files: int, num_input_pipelines: int) -> tf.data.experimental.AutoShardPolicy:
    if num_files >= num_input_pipelines:
        return tf.data.experimental.AutoShardPolicy.FILE
    return tf.data.experimental.AutoShardPolicy.DATA


def pipeline_share(files: list[str], pipelines: int, index: int) -> PipelineShare:
    """What input pipeline `index` of `pipelines` reads of a split's sorted `files`."""
    if pipelines == 1:
        return PipelineShare(files, by_record=False)
    if auto_shard_policy(len(files), pipelines) == tf.data.experimental.AutoShardPolicy.FILE:
        return PipelineShare(files[index::pipelines], by_record=False)
    return PipelineShare(files, by_record=True)


def records_per_pipeline(files: list[str], pipelines: int, records: int) -> list[int]:
    """How many of a split's `records` (in `files`) each of `pipelines` input pipelines reads.

    Only sharding by file needs the files' own counts, and reads them; the other cases follow
    from `records` alone."""
    counts = []
    for index in range(pipelines):
        share = pipeline_share(files, pipelines, index)
        if share.by_record:
            counts.append(len(range(index, records, pipelines)))
        elif pipelines == 1:
            counts.append(records)
        else:
            counts.append(sum(_records_in(path) for path in share.files))
    return counts


def full_batch_steps(counts: list[int], images_per_step: int) -> int:
    """Global steps that carry every pipeline's records (`counts`), `images_per_step` per pipeline
    each step (its replicas' batches together): the busiest pipeline sets it, the others fill up."""
    return max(math.ceil(count / images_per_step) for count in counts)


def _records_in(path: str) -> int:
    return int(tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), as_written(lambda count, _: count + 1)))
