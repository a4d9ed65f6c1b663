"""What a run writes beside its shards, for `publish`: every rejection, and the run's summary."""

from __future__ import annotations

import json

import apache_beam as beam

from beam_jobs import file_io
from beam_jobs.statistics import DatasetStatisticsFn

SUMMARY_FILE = "summary.json"
REJECTED_PARTS = "rejected.jsonl"


class WriteRejections(beam.PTransform):
    """`Rejection`s → `staging_dir/rejected.jsonl`, one JSON object a line (keys sorted)."""

    def __init__(self, staging_dir: str):
        super().__init__()
        self._staging_dir = staging_dir

    def expand(self, rejections: beam.PCollection) -> beam.pvalue.PDone:
        return (rejections
                | "RejectionToJson" >> beam.Map(lambda rejection: json.dumps(rejection.to_json_dict(), sort_keys=True))
                | "WriteRejections" >> beam.io.WriteToText(file_io.join(self._staging_dir, REJECTED_PARTS),
                                                           shard_name_template=""))


class WriteSummary(beam.PTransform):
    """Written `ValidatedImage`s → `staging_dir/summary.json`: their statistics, the images and
    boxes read (one int each, `images_read` and `boxes_read`) and the run's `class_names`."""

    def __init__(self, staging_dir: str, images_read: beam.PCollection, source_images: beam.PCollection,
                 class_names: beam.PCollection):
        super().__init__()
        self._staging_dir = staging_dir
        self._images_read, self._source_images, self._class_names = images_read, source_images, class_names

    def expand(self, written: beam.PCollection) -> beam.pvalue.PDone:
        boxes_read = (self._source_images
                      | "BoxesPerImage" >> beam.Map(lambda image: image.boxes_in_source)
                      | "CountBoxesRead" >> beam.CombineGlobally(sum))
        return (written
                | "DatasetStatistics" >> beam.CombineGlobally(DatasetStatisticsFn())
                | "AddReadCounts" >> beam.Map(summary,
                                              images_read=beam.pvalue.AsSingleton(self._images_read),
                                              boxes_read=beam.pvalue.AsSingleton(boxes_read),
                                              class_names=beam.pvalue.AsSingleton(self._class_names))
                | "SummaryToJson" >> beam.Map(json.dumps)
                | "WriteSummary" >> beam.io.WriteToText(file_io.join(self._staging_dir, SUMMARY_FILE),
                                                        shard_name_template=""))


def summary(statistics: dict, images_read: int, boxes_read: int, class_names: tuple[str, ...]) -> dict:
    """The content of `summary.json`."""
    return {"statistics": statistics, "images_read": images_read, "boxes_read": boxes_read,
            "class_names": list(class_names)}
