"""CSV box lists (one row per box) → `SourceImage`s.

The column layout is given by role names, by position. The default is the raccoon
layout `filename,width,height,class,xmin,ymin,xmax,ymax`; the BCCD file loads with
`filename,class,xmin,xmax,ymin,ymax`. `-` skips a column. A header row is detected
and skipped. A row with a filename and empty box fields marks a negative image.
"""

from __future__ import annotations

import csv
import io
from typing import Optional, Sequence

from beam_jobs import file_io
from beam_jobs.source_records import Level, Reason, Rejection, SourceImage, SourceObject
from beam_jobs.sources.image_paths import outside_images, path_inside
from beam_jobs.sources.source_plan import SourcePlan, already_parsed
from contracts.errors import BoxflowError

DEFAULT_COLUMNS = ("filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax")
KNOWN_ROLES = frozenset(DEFAULT_COLUMNS) | {"-"}
REQUIRED_ROLES = ("filename", "class", "xmin", "ymin", "xmax", "ymax")
BOX_ROLES = ("class", "xmin", "ymin", "xmax", "ymax")


def parse_column_roles(spec: str) -> tuple[str, ...]:
    roles = tuple(role.strip() for role in spec.split(","))
    unknown = [role for role in roles if role not in KNOWN_ROLES]
    if unknown:
        raise BoxflowError(f"--csv-columns: unknown column role(s) {unknown}; known: {sorted(KNOWN_ROLES)}")
    missing = [role for role in REQUIRED_ROLES if role not in roles]
    if missing:
        raise BoxflowError(f"--csv-columns: missing required role(s) {missing}")
    return roles


def plan_csv(csv_path: str, images_dir: Optional[str], roles: Sequence[str] = DEFAULT_COLUMNS) -> SourcePlan:
    try:
        text = file_io.read_bytes(csv_path).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise BoxflowError(f"{csv_path}: cannot read CSV file: {error}") from None
    images = parse_csv_text(text, csv_path, images_dir or file_io.dirname(csv_path), roles)
    if not images:
        raise BoxflowError(f"{csv_path}: no data rows")
    return SourcePlan(format_name="csv", input_path=csv_path, parse=already_parsed, items=tuple(images))


def parse_csv_text(text: str, source: str, images_dir: str, roles: Sequence[str]) -> list[SourceImage]:
    """Pure: CSV text → one `SourceImage` per distinct filename, in order of first appearance."""
    rows = list(csv.reader(io.StringIO(text)))
    first_line = 1
    if rows and _is_header(rows[0], roles):
        rows, first_line = rows[1:], 2
    by_filename: dict[str, dict] = {}
    for number, row in enumerate(rows, start=first_line):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{source}:{number}"
        values = {role: cell.strip() for role, cell in zip(roles, row) if role != "-"}
        filename = values.get("filename", "")
        entry = by_filename.setdefault(filename, {"objects": [], "problems": [], "size": None})
        if len(row) != len(roles):
            entry["problems"].append(Rejection(where, Reason.ANNOTATION_MALFORMED,
                                               f"expected {len(roles)} columns, got {len(row)}", Level.BOX))
            continue
        try:
            if entry["size"] is None and "width" in values and "height" in values:
                entry["size"] = (int(float(values["width"])), int(float(values["height"])))
            if all(values[role] == "" for role in BOX_ROLES):
                continue  # a negative image's row
            box = tuple(float(values[key]) for key in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError as error:
            entry["problems"].append(Rejection(where, Reason.ANNOTATION_MALFORMED, f"not a number: {error}", Level.BOX))
            continue
        entry["objects"].append(SourceObject(class_name=values["class"], box=box))

    images = []
    for filename, entry in by_filename.items():
        size = entry["size"] or (None, None)
        image_path = path_inside(images_dir, filename) if filename else None
        if filename and image_path is None:
            entry["problems"].append(outside_images(f"{source}:{filename}", filename))
        images.append(SourceImage(
            source=f"{source}:{filename}" if filename else source,
            source_id=filename,
            filename=filename,
            objects=tuple(entry["objects"]),
            image_path=image_path,
            width=size[0],
            height=size[1],
            parse_rejections=tuple(entry["problems"]),
        ))
    return images


def _is_header(row: Sequence[str], roles: Sequence[str]) -> bool:
    if "xmin" not in roles or len(row) <= roles.index("xmin"):
        return False
    try:
        float(row[roles.index("xmin")])
        return False
    except ValueError:
        return True
