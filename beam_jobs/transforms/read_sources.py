"""Read: a source plan's work items → `SourceImage`s, and the items that do not parse."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import apache_beam as beam
from apache_beam.io.tfrecordio import ReadAllFromTFRecord
from apache_beam.metrics import Metrics

from beam_jobs.source_records import AnnotationError, Reason, Rejection, SourceImage
from beam_jobs.sources.source_plan import SourcePlan, already_parsed
from beam_jobs.transforms import METRICS_NAMESPACE, REJECTED


class ParseAnnotations(beam.DoFn):
    """A work item (path, record, parsed entry) → `SourceImage`, or an ANNOTATION_MALFORMED rejection."""

    def __init__(self, parse: Callable[[Any], SourceImage]):
        self._parse = parse
        self._images_read = Metrics.counter(METRICS_NAMESPACE, "images_read")
        self._malformed = Metrics.counter(METRICS_NAMESPACE, f"image_{Reason.ANNOTATION_MALFORMED.value}")

    def process(self, item: Any) -> Iterator[Any]:
        self._images_read.inc()
        try:
            yield self._parse(item)
        except AnnotationError as error:
            self._malformed.inc()
            yield beam.pvalue.TaggedOutput(REJECTED, Rejection(error.source, Reason.ANNOTATION_MALFORMED, error.detail))


class ReadSourceImages(beam.PTransform):
    """pipeline → `{"images": SourceImage, REJECTED: Rejection, "images_read": one int}`.

    The items come from the plan, or, for TFRecord input, are the records its pattern matches.
    Rejections are the items that do not parse and the plan's own (found while planning).
    """

    def __init__(self, plan: SourcePlan):
        super().__init__()
        self._plan = plan

    def expand(self, pipeline: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        plan = self._plan
        if plan.tfrecord_pattern is not None:
            items = (pipeline
                     | "TFRecordPattern" >> beam.Create([plan.tfrecord_pattern])
                     | "ReadTFRecords" >> ReadAllFromTFRecord(with_filename=True))
        else:
            # Items whose parse reads files are spread over the workers first; items parsed
            # while planning go straight on to the shard grouping, which spreads them anyway.
            items = pipeline | "ListSourceItems" >> beam.Create(plan.items, reshuffle=plan.parse is not already_parsed)
        parsed = items | "ParseAnnotations" >> beam.ParDo(ParseAnnotations(plan.parse)).with_outputs(REJECTED,
                                                                                                     main="images")
        planned = pipeline | "PlanningRejections" >> beam.Create(list(plan.rejections))
        return {"images": parsed.images,
                REJECTED: (parsed[REJECTED], planned) | "ReadRejections" >> beam.Flatten(),
                "images_read": items | "CountImagesRead" >> beam.combiners.Count.Globally()}
