"""Writing one TFRecord file through Beam's `FileSystems`, without TensorFlow.

A TFRecord is a sequence of records framed as: uint64 little-endian length, the
masked CRC-32C of those 8 bytes, the data, the masked CRC-32C of the data (the
format `tf.io.TFRecordWriter` writes and `tf.data.TFRecordDataset` reads).
"""

from __future__ import annotations

import struct
from types import TracebackType
from typing import Optional

import google_crc32c
from apache_beam.io.filesystems import FileSystems

_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


class TFRecordFileWriter:
    """`with TFRecordFileWriter(path) as writer: writer.write(serialized)`."""

    def __init__(self, path: str):
        self._file = FileSystems.create(path, mime_type="application/octet-stream", compression_type="uncompressed")

    def write(self, record: bytes) -> None:
        length = struct.pack("<Q", len(record))
        self._file.write(b"".join((length, struct.pack("<I", masked_crc32c(length)), record,
                                   struct.pack("<I", masked_crc32c(record)))))

    def __enter__(self) -> "TFRecordFileWriter":
        return self

    def __exit__(self, kind: Optional[type], value: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self._file.close()
