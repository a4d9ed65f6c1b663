"""File access through Beam's `FileSystems`, so local paths and gs:// / s3:// alike work."""

from __future__ import annotations

import posixpath

from apache_beam.io.filesystems import FileSystems

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path, compression_type="uncompressed") as f:
        return f.read()


def write_bytes(path: str, data: bytes) -> None:
    with FileSystems.create(path, mime_type="application/octet-stream", compression_type="uncompressed") as f:
        f.write(data)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def join(base: str, *parts: str) -> str:
    return FileSystems.join(base, *parts)


def list_files(pattern: str) -> list[str]:
    """Paths matching a glob, sorted so planning is deterministic."""
    match = FileSystems.match([pattern])[0]
    return sorted(metadata.path for metadata in match.metadata_list)


def list_files_with_extensions(directory: str, extensions: tuple[str, ...]) -> list[str]:
    """Files directly in or below `directory` whose name ends with one of `extensions`."""
    paths = list_files(join(directory, "**")) or list_files(join(directory, "*"))
    return [path for path in paths if path.lower().endswith(extensions)]


def stem(path: str) -> str:
    return posixpath.splitext(posixpath.basename(path))[0]


def basename(path: str) -> str:
    return posixpath.basename(path)


def dirname(path: str) -> str:
    return posixpath.dirname(path.rstrip("/"))
