"""The class list of a run: the source's own, or the names its images use, sorted."""

from __future__ import annotations

from typing import Optional

import apache_beam as beam

from beam_jobs.source_records import SourceImage


class ClassNames(beam.PTransform):
    """`SourceImage`s → one tuple of class names (label ids follow its order, from 1): `declared`
    when the source declares its classes, else every name the images use, sorted."""

    def __init__(self, declared: Optional[tuple[str, ...]]):
        super().__init__()
        self._declared = declared

    def expand(self, images: beam.PCollection) -> beam.PCollection:
        if self._declared is not None:
            return images.pipeline | "DeclaredClasses" >> beam.Create([tuple(self._declared)])
        return (images
                | "ClassNamesSeen" >> beam.FlatMap(_class_names_of)
                | "DistinctClassNames" >> beam.Distinct()
                | "CollectClassNames" >> beam.combiners.ToList()
                | "SortClassNames" >> beam.Map(lambda names: tuple(sorted(names))))


def _class_names_of(image: SourceImage) -> list[str]:
    return [annotated.class_name for annotated in image.objects]
