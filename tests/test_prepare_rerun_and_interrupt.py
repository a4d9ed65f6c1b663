"""Reruns give the same examples in the same splits (across DirectRunner modes), and a run
killed midway leaves no partial shard that a reader would pick up."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from boxflow.synth import ANNOTATIONS_FILE, SynthConfig, write_synth_dataset
from tests.builders import prepare, read_records

SHARD_GLOB = "*-?????-of-?????.tfrecord"


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "synth"
    write_synth_dataset(str(path), 400, SynthConfig(image_size=96, min_object_size=8, max_object_size=32), seed=3)
    return path


def examples_by_split(data_dir) -> dict[str, list[str]]:
    by_split: dict[str, list[str]] = {}
    for record in read_records(data_dir):
        digest = hashlib.sha256(record["encoded"] + repr(record["boxes"].tolist()).encode()).hexdigest()
        by_split.setdefault(record["split"], []).append(f"{record['source_id']}:{digest}")
    return {split: sorted(values) for split, values in by_split.items()}


def cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "boxflow", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, **kwargs)


@pytest.mark.slow
def test_rerun_and_multiprocess_runner_give_the_same_splits(synth_dir, tmp_path):
    annotations = synth_dir / ANNOTATIONS_FILE
    prepare("coco", annotations, tmp_path / "a", val_fraction=0.25)
    prepare("coco", annotations, tmp_path / "b", val_fraction=0.25)
    process = cli("prepare", "--format", "coco", "--input", str(annotations), "--out", str(tmp_path / "c"),
                  "--val-fraction", "0.25", "--workers", "2")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output.decode()[-2000:]
    first = examples_by_split(tmp_path / "a")
    assert set(first) == {"train", "val"} and len(first["val"]) > 10
    assert examples_by_split(tmp_path / "b") == first
    assert examples_by_split(tmp_path / "c") == first


@pytest.mark.slow
def test_killed_run_leaves_previous_dataset_whole_and_no_partial_shard(synth_dir, tmp_path):
    annotations = synth_dir / ANNOTATIONS_FILE
    out = tmp_path / "out"
    prepare("coco", annotations, out, num_shards=4)
    before = examples_by_split(out)
    before_files = sorted(p.name for p in out.glob(SHARD_GLOB))

    process = cli("prepare", "--format", "coco", "--input", str(annotations), "--out", str(out),
                  "--num-shards", "2", "--workers", "2")
    # Kill it as soon as its first shard is being written.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(out.glob(".boxflow-staging-*/*.tfrecord*")):
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be interrupted"

    # The previous dataset is untouched and complete; the killed run's files match no shard pattern.
    assert sorted(p.name for p in out.glob(SHARD_GLOB)) == before_files
    assert examples_by_split(out) == before
    assert (out / "dataset_info.json").exists()
    leftovers = list(out.glob(".boxflow-staging-*"))
    assert leftovers, "expected the killed run's staging folder"

    info = prepare("coco", annotations, out, num_shards=2)
    assert not list(out.glob(".boxflow-staging-*"))
    assert sorted(p.name for p in out.glob("train-*")) == ["train-00000-of-00002.tfrecord",
                                                           "train-00001-of-00002.tfrecord"]
    assert examples_by_split(out) == before
    assert info["accounting"]["images_read"] == 400
