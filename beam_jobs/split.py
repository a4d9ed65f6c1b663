"""Stable split assignment: the same source id lands in the same split on every run and runner."""

import hashlib

TRAIN = "train"
VAL = "val"


def hash_split(source_id: str, val_fraction: float) -> str:
    """`val` for a `val_fraction` share of ids chosen by SHA-256 (not Python's salted `hash`)."""
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    return VAL if position < val_fraction else TRAIN


def hash_shard(source_id: str, shard_count: int) -> int:
    """The shard of a split an id is written to, from hash bits independent of `hash_split`'s."""
    digest = hashlib.sha256(source_id.encode("utf-8")).digest()
    return int.from_bytes(digest[8:16], "big") % shard_count
