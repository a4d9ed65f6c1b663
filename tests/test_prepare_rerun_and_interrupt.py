"""Reruns give the same examples in the same splits (across DirectRunner modes), and a run
killed midway leaves no partial shard that a reader would pick up."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from beam_jobs.publish import claim_out_dir
from contracts.errors import BoxflowError
from contracts.owned_folder import MARKER_FILE
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


def cli(*args: str, stderr_apart: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "boxflow", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT, start_new_session=True)


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


def test_a_folder_holding_a_users_tfrecords_is_refused_and_left_as_it_was(synth_dir, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    theirs = out / "train-00000-of-00001.tfrecord"
    theirs.write_bytes(b"a user's own records")
    process = cli("prepare", "--format", "coco", "--input", str(synth_dir / ANNOTATIONS_FILE), "--out", str(out),
                  stderr_apart=True)
    _, errors = process.communicate(timeout=300)
    assert process.returncode == 2
    assert errors.decode().strip().splitlines()[-1] == (
        f"boxflow prepare: error: --out {out}: the folder holds files boxflow prepare did not write "
        "(train-00000-of-00001.tfrecord); choose a new or empty folder (nothing was changed)")
    assert theirs.read_bytes() == b"a user's own records"
    assert sorted(path.name for path in out.iterdir()) == [theirs.name]


def test_only_an_empty_folder_or_a_dataset_prepare_wrote_is_claimed(tmp_path):
    claim_out_dir(str(tmp_path / "new"))
    assert (tmp_path / "new" / MARKER_FILE).read_text() == "prepare\n"

    older = tmp_path / "older"  # prepared before the marker existed: its dataset_info.json says whose it is
    older.mkdir()
    (older / "dataset_info.json").write_text(json.dumps({"schema_version": 1, "accounting": {}, "splits": {}}))
    (older / ".boxflow-staging-0123456789ab").mkdir()
    claim_out_dir(str(older))
    assert (older / MARKER_FILE).read_text() == "prepare\n"

    for name, content in (("dataset_info.json", "{}"), (MARKER_FILE, "synth\n"), ("notes.txt", "mine")):
        folder = tmp_path / f"holding-{name}"
        folder.mkdir()
        (folder / name).write_text(content)
        with pytest.raises(BoxflowError, match="did not write"):
            claim_out_dir(str(folder))
        assert [path.name for path in folder.iterdir()] == [name]
