"""Split: each image to its split and shard, by stable hashes of its id, then grouped by shard."""

from __future__ import annotations

import apache_beam as beam

from beam_jobs.prepare_settings import PrepareSettings
from beam_jobs.source_records import SourceImage
from beam_jobs.split import hash_shard, hash_split


def shard_key(source: SourceImage, settings: PrepareSettings) -> tuple[str, int]:
    """`(split, shard index)` of `source`: its own split if the source gave one, else by hash."""
    split = source.split or hash_split(source.source_id, settings.val_fraction)
    return split, hash_shard(source.source_id, settings.shard_count(split))


class GroupByShard(beam.PTransform):
    """`SourceImage`s → `((split, shard index), [SourceImage, ...])`, one element per shard."""

    def __init__(self, settings: PrepareSettings):
        super().__init__()
        self._settings = settings

    def expand(self, images: beam.PCollection) -> beam.PCollection:
        settings = self._settings
        return (images
                | "AssignShards" >> beam.Map(lambda source: (shard_key(source, settings), source))
                | "GroupByShard" >> beam.GroupByKey())
