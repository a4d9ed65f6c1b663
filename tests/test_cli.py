"""The `boxflow` command line: exit status 2 and one clear stderr line for bad arguments or input."""

import json
import os
import subprocess
import sys

import pytest

from boxflow.cli import main
from tests.builders import image_bytes, voc_xml


def test_synth_then_prepare_through_the_cli(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "s"), "--images", "12", "--image-size", "64", "--seed", "2",
                 "--masks"]) == 0
    assert "boxes and masks" in capsys.readouterr().out
    assert main(["prepare", "--format", "coco", "--input", str(tmp_path / "s" / "annotations.json"),
                 "--out", str(tmp_path / "d"), "--workers", "1", "--num-shards", "2"]) == 0
    out = capsys.readouterr().out
    assert "images: 12 read = 12 written + 0 rejected" in out
    assert sorted(p.name for p in (tmp_path / "d").glob("train-*")) == ["train-00000-of-00002.tfrecord",
                                                                        "train-00001-of-00002.tfrecord"]
    splits = json.loads((tmp_path / "d" / "dataset_info.json").read_text())["splits"]
    assert all(split["masks"] == split["boxes"] > 0 for split in splits.values())


@pytest.mark.parametrize("args, message", [
    (["prepare", "--format", "coco", "--input", "/nonexistent.json", "--out", "x"], "--input /nonexistent.json: no such"),
    (["prepare", "--format", "voc", "--input", ".", "--out", "x", "--val-fraction", "1.5"], "--val-fraction must be in"),
    (["prepare", "--format", "csv", "--input", ".", "--out", "x", "--csv-columns", "a,b"], "unknown column role"),
    (["synth", "--out", "x", "--image-size", "8"], "--image-size must be at least 32"),
])
def test_bad_arguments_exit_2_with_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error" in line]
    assert errors == [err[-1]] and message in err[-1] and err[-1].startswith(f"boxflow {args[0]}: error:")
    assert not any("Traceback" in line for line in err)


def test_unknown_format_is_an_argparse_error():
    result = subprocess.run([sys.executable, "-m", "boxflow", "prepare", "--format", "xml", "--input", "a",
                             "--out", "b"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice: 'xml'" in result.stderr


def test_the_command_line_offers_exactly_the_formats_prepare_reads():
    from beam_jobs.prepare_settings import FORMATS
    from boxflow.cli import build_parser

    subparsers = next(action for action in build_parser()._actions if action.dest == "command")
    format_flag = next(action for action in subparsers.choices["prepare"]._actions if action.dest == "format")
    assert tuple(format_flag.choices) == FORMATS


def test_too_many_rejections_exit_2_after_writing_the_dataset(tmp_path, capsys):
    (tmp_path / "ann").mkdir()
    (tmp_path / "img").mkdir()
    (tmp_path / "ann" / "ok.xml").write_text(voc_xml("ok.jpg", 32, 32, [("a", (1, 1, 9, 9))]))
    (tmp_path / "img" / "ok.jpg").write_bytes(image_bytes(32, 32))
    (tmp_path / "ann" / "gone.xml").write_text(voc_xml("gone.jpg", 32, 32, [("a", (1, 1, 9, 9))]))
    code = main(["prepare", "--format", "voc", "--input", str(tmp_path / "ann"), "--images", str(tmp_path / "img"),
                 "--out", str(tmp_path / "d"), "--workers", "1", "--max-reject-fraction", "0.25"])
    assert code == 2
    assert "50.0% of images were rejected" in capsys.readouterr().err
    assert (tmp_path / "d" / "dataset_info.json").exists()
    assert '"image_missing"' in (tmp_path / "d" / "rejected.jsonl").read_text()


def test_beam_pipeline_options_pass_through_to_beam():
    from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

    from beam_jobs.prepare_settings import PrepareSettings

    settings = PrepareSettings(source_format="coco", input_path="in.json", out_dir="gs://b/out",
                               runner="DataflowRunner", beam_args=("--project", "P", "--region=us-central1",
                                                                   "--temp_location", "gs://b/tmp"))
    options = PipelineOptions(settings.pipeline_args())
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == ("P", "us-central1", "gs://b/tmp")
    local = PrepareSettings(source_format="coco", input_path="in.json", out_dir="o", workers=2).pipeline_args()
    assert "--direct_num_workers=2" in local


@pytest.mark.parametrize("flags, imports_tensorflow", [((), False), (("--augment-copies", "1"), True)])
def test_the_prepare_workers_import_tensorflow_only_to_augment(tmp_path, flags, imports_tensorflow):
    """The settings travel pickled into every worker process; what unpickling them imports, each
    worker imports before its first image (TensorFlow: about 5 s a worker). The command always reads
    the recipe; `PrepareSettings` keeps it only with copies to make."""
    from apache_beam.internal import pickler

    from boxflow.cli import parse_arguments
    from boxflow.commands.prepare import settings_from

    args, extra = parse_arguments(["prepare", "--format", "coco", "--input", "in.json", "--out", "o", *flags])
    (tmp_path / "settings.pickle").write_bytes(pickler.dumps(settings_from(args, extra)))
    check = ("import pathlib, sys; from apache_beam.internal import pickler; "
             f"pickler.loads(pathlib.Path({str(tmp_path / 'settings.pickle')!r}).read_bytes()); "
             "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(imports_tensorflow)


def test_stray_positional_arguments_to_prepare_are_refused(capsys):
    args = ["prepare", "--format", "coco", "--input", "in.json", "--out", "o", "--project", "P", "stray"]
    assert main(args) == 2
    assert "unexpected argument(s) ['stray']" in capsys.readouterr().err


def test_prepare_runner_augment_seed_and_drop_emptied_images_flags(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "s"), "--images", "6", "--image-size", "64", "--seed", "3"]) == 0
    coco = str(tmp_path / "s" / "annotations.json")

    def prepared(out: str, *flags: str) -> bytes:
        assert main(["prepare", "--format", "coco", "--input", coco, "--out", str(tmp_path / out), "--workers", "1",
                     "--num-shards", "1", "--val-fraction", "0", "--runner", "DirectRunner", *flags]) == 0
        return (tmp_path / out / "train-00000-of-00001.tfrecord").read_bytes()

    first = prepared("a", "--augment-copies", "1", "--augment-seed", "3")
    assert prepared("b", "--augment-copies", "1", "--augment-seed", "3") == first  # the seed fixes the copies
    assert prepared("c", "--augment-copies", "1", "--augment-seed", "4") != first

    document = json.loads((tmp_path / "s" / "annotations.json").read_text())
    boxed = {a["image_id"] for a in document["annotations"]}
    for annotation in document["annotations"]:
        annotation["bbox"][2] = 0  # every box degenerate
    (tmp_path / "s" / "annotations.json").write_text(json.dumps(document))
    capsys.readouterr()
    prepared("d", "--drop-emptied-images", "--max-reject-fraction", "1")
    assert f"{6 - len(boxed)} written + {len(boxed)} rejected" in capsys.readouterr().out


@pytest.mark.parametrize("choice, onednn", [(None, True), ("0", False)])
def test_commands_run_onednn_kernels_unless_the_user_chose(choice, onednn, tmp_path):
    """TensorFlow announces its oneDNN kernels at start-up (shown with TF_CPP_MIN_LOG_LEVEL=0): a
    command asks for them before TensorFlow loads, and a user's TF_ENABLE_ONEDNN_OPTS=0 stands."""
    environment = {name: value for name, value in os.environ.items() if name != "TF_ENABLE_ONEDNN_OPTS"}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "0"
    if choice is not None:
        environment["TF_ENABLE_ONEDNN_OPTS"] = choice
    result = subprocess.run([sys.executable, "-m", "boxflow", "evaluate", "--run", str(tmp_path / "no_run"),
                             "--data", str(tmp_path / "no_data")], capture_output=True, text=True, timeout=300,
                            env=environment)
    assert result.returncode == 2 and "no_data: no dataset_info.json" in result.stderr
    assert ("oneDNN custom operations are on" in result.stderr) == onednn, result.stderr[-2000:]
