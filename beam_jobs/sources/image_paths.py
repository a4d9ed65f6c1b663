"""Image file names from annotations, joined to the images folder only when they stay inside it.

An annotation is data from anywhere: a COCO `file_name` of `../../etc/passwd` or `/home/x/.ssh/id_rsa`
would otherwise be read into the dataset. Subfolders (`train/0001.jpg`) are fine.
"""

from __future__ import annotations

import re
from typing import Optional

from beam_jobs import file_io
from beam_jobs.source_records import Reason, Rejection

_ABSOLUTE = re.compile(r"^([/\\]|[A-Za-z]:|[A-Za-z][A-Za-z0-9+.-]*://)")  # POSIX, Windows drive or UNC, URL


def path_inside(images_dir: str, filename: str) -> Optional[str]:
    """`images_dir/filename`, or None when `filename` is absolute or climbs out with `..`."""
    if _ABSOLUTE.match(filename):
        return None
    depth = 0
    for part in re.split(r"[/\\]", filename):
        if part == "..":
            depth -= 1
            if depth < 0:
                return None
        elif part not in ("", "."):
            depth += 1
    return file_io.join(images_dir, filename)


def outside_images(source: str, filename: str) -> Rejection:
    """The image-level rejection of an annotation whose file name leaves the images folder."""
    return Rejection(source, Reason.PATH_OUTSIDE_IMAGES,
                     f"file name {filename!r} points outside the images folder; only paths inside it are read")
