"""The README and docs/ cannot drift from the code.

- Every synopsis names exactly the flags its command has.
- Every cluster command (```sh cluster: Dataflow, Flink, Spark, multi-host, TPU, Docker) is checked
  for its arguments: boxflow's parser, Beam's pipeline options, TF_CONFIG, TF Serving's flags.
- Every single-machine command (```sh) runs as written, in the guide's order, in a scratch project
  that sees `../shared` and the repository's docs/ and benchmarks/. Two things are changed, and
  only these: training is shortened (one epoch of a tiny model at 128 px) and the server gets free
  ports, which `predict` is pointed at.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from boxflow.cli import build_parser, main, parse_arguments
from tests.builders import free_ports, jpeg_bytes
from tests.conftest import SHARED_DATA
from tests.doc_commands import (REPOSITORY, Command, guide_blocks, guide_commands, markdown_table, synopses,
                                without_options)

SHORT_TRAINING = ("--epochs", "1", "--image-size", "128", "--batch-size", "4", "--backbone", "tiny",
                  "--eval-every", "0")
# Flags of tensorflow_model_server (tensorflow_serving/model_servers/main.cc) the guide may use.
TF_SERVING_FLAGS = {"port", "rest_api_port", "model_config_file", "model_config_file_poll_wait_seconds",
                    "enable_batching", "batching_parameters_file", "model_name", "model_base_path",
                    "enable_model_warmup", "file_system_poll_wait_seconds", "monitoring_config_file",
                    "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism", "rest_api_num_threads"}


def _subcommand_flags() -> dict[str, set[str]]:
    subparsers = next(action for action in build_parser()._actions if action.dest == "command")
    return {name: {flag for action in parser._actions for flag in action.option_strings if flag.startswith("--")}
            - {"--help"} for name, parser in subparsers.choices.items()}


def test_every_command_has_a_synopsis_naming_exactly_its_flags():
    import re

    flags = _subcommand_flags()
    written = synopses()
    assert set(written) == set(flags), "commands without a synopsis in docs/commands.md, or synopses of none"
    for command, text in written.items():
        assert set(re.findall(r"--[a-z][a-z0-9-]*", text)) == flags[command], command


def test_every_fenced_block_says_what_it_holds():
    from tests.doc_commands import GUIDE, blocks

    untagged = [f"{block.file}:{block.line} ```{block.info}" for file in GUIDE for block in blocks(file)
                if block.info not in ("sh", "sh cluster", "text", "yaml", "python")]
    assert not untagged, "tag each fenced block (see tests/doc_commands.py)"


def test_every_repository_path_the_guide_names_exists():
    import re

    from tests.doc_commands import GUIDE

    pattern = re.compile(r"(?<![\w/.-])((?:tests|benchmarks|docs|keras_models|serving|pipeline|beam_jobs|boxflow)/[\w./-]*\w)")
    named = {(file, path) for file in GUIDE for path in pattern.findall((REPOSITORY / file).read_text())}
    assert len(named) > 20
    missing = sorted(f"{file}: {path}" for file, path in named if not (REPOSITORY / path).exists())
    assert not missing, missing


# ---- cluster commands: arguments only ---------------------------------------------------------------

def _check_boxflow_arguments(command: Command) -> None:
    args, extra = parse_arguments(command.argv[1:])
    if args.command == "prepare":
        _check_beam_options(command, args.runner, extra)
    environment = dict(command.environment)
    if "TF_CONFIG" in environment:
        _check_tf_config(command, environment["TF_CONFIG"])


def _check_beam_options(command: Command, runner: str, extra: list[str]) -> None:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners import create_runner

    from boxflow.commands.prepare import beam_options

    create_runner(runner)  # a runner Beam knows, constructible without a cluster
    options = PipelineOptions(list(beam_options(extra))).get_all_options(retain_unknown_options=False)
    pairs = [(extra[index][2:], extra[index + 1]) for index in range(0, len(extra), 2)]
    for name, value in pairs:
        known = options.get(name.replace("-", "_"), options.get(name.replace("-", "_") + "s"))
        assert known is not None and value in str(known), f"{command.where}: Beam does not take --{name} {value}"


def _check_tf_config(command: Command, text: str) -> None:
    config = json.loads(text)
    assert config["task"]["type"] == "worker" and 0 <= config["task"]["index"] < len(config["cluster"]["worker"]), \
        command.where


def test_multi_host_commands_differ_only_in_the_task_index(monkeypatch):
    from keras_models.training.strategy import workers_in_tf_config

    multi_host = [command for command in guide_commands("sh cluster") if dict(command.environment).get("TF_CONFIG")]
    assert multi_host, "the guide shows no multi-host training"
    configs = [json.loads(dict(command.environment)["TF_CONFIG"]) for command in multi_host]
    assert sorted(config["task"]["index"] for config in configs) == list(range(len(configs)))
    assert len({command.argv for command in multi_host}) == 1
    for command in multi_host:
        monkeypatch.setenv("TF_CONFIG", dict(command.environment)["TF_CONFIG"])
        assert workers_in_tf_config() == len(configs)


def _check_docker(command: Command) -> None:
    from serving.model_base import BATCHING_PARAMETERS, CONTAINER_MODEL_BASE, MODELS_CONFIG

    argv = list(command.argv)
    if argv[1] == "build":
        dockerfile = REPOSITORY / argv[argv.index("-f") + 1]
        _check_beam_worker_dockerfile(dockerfile.read_text())
    elif argv[1] == "run":
        image_index = next(index for index, arg in enumerate(argv) if arg.startswith("tensorflow/serving"))
        mount = argv[argv.index("-v") + 1]
        assert mount.split(":")[-1] == CONTAINER_MODEL_BASE, command.where
        server_flags = dict(flag[2:].split("=", 1) if "=" in flag else (flag[2:], "true")
                            for flag in argv[image_index + 1:])
        assert set(server_flags) <= TF_SERVING_FLAGS, command.where
        assert server_flags["model_config_file"] == f"{CONTAINER_MODEL_BASE}/{MODELS_CONFIG}"
        assert server_flags.get("batching_parameters_file", f"{CONTAINER_MODEL_BASE}/{BATCHING_PARAMETERS}") == \
            f"{CONTAINER_MODEL_BASE}/{BATCHING_PARAMETERS}"
    else:
        assert argv[1] == "push", command.where


def _check_beam_worker_dockerfile(text: str) -> None:
    from importlib.metadata import version

    beam = version("apache-beam")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"FROM apache/beam_python{python}_sdk:{beam}" in text
    assert f"boxflow-{version('boxflow')}-py3-none-any.whl" in text


def test_cluster_commands_are_accepted_by_what_they_call():
    import tomllib

    checked = {"boxflow": 0, "docker": 0}
    for command in guide_commands("sh cluster"):
        program = command.argv[0]
        if program == "boxflow":
            _check_boxflow_arguments(command)
        elif program == "docker":
            _check_docker(command)
        elif program == "pip":
            assert command.argv[1] == "wheel", command.where
            continue
        elif program == "curl":
            assert any("/v1/models/" in arg for arg in command.argv), command.where
            continue
        else:
            pytest.fail(f"{command.where}: no check for {program}; add one to tests/test_docs.py")
        checked[program] += 1
    assert checked["boxflow"] >= 6 and checked["docker"] >= 3, checked
    extras = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "gcp" in extras  # docs/scaling_out.md installs it for DataflowRunner


# ---- single-machine commands: run as written ---------------------------------------------------------

class _Server:
    """`boxflow serve` started in the background, as the guide's `&` does, on free ports."""

    def __init__(self, command: Command):
        self.rest_port, self.grpc_port = free_ports(2)
        argv = [*command.argv[1:], "--rest-port", str(self.rest_port), "--grpc-port", str(self.grpc_port)]
        self.process = subprocess.Popen([sys.executable, "-m", "boxflow", *argv], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 180
        self.serving = ""
        for line in self.process.stdout:
            if line.startswith("serving ") or time.monotonic() > deadline:
                self.serving = line
                break
        assert self.process.poll() is None, f"{command.where}: boxflow serve exited"
        # Keep reading what the server prints, so a full pipe never blocks it.
        self._drain = threading.Thread(target=self.process.stdout.read, daemon=True)
        self._drain.start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self._drain.join(timeout=10)

    def predict_argv(self, argv: tuple[str, ...]) -> list[str]:
        address = (f"127.0.0.1:{self.grpc_port}" if "--grpc" in argv else f"http://127.0.0.1:{self.rest_port}")
        return [*without_options(argv[1:], "--server"), "--server", address]


def _run(command: Command, server: _Server | None) -> None:
    program, argv = command.argv[0], command.argv
    if program == "python":
        result = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{command.where}: {result.stderr[-2000:]}"
        return
    assert program == "boxflow", f"{command.where}: only boxflow and python commands may run in ```sh blocks"
    if argv[1] == "train":
        argv = ("boxflow", *without_options(argv[1:], "--epochs", "--time-budget", "--image-size", "--batch-size",
                                            "--backbone"), *SHORT_TRAINING)
    if argv[1] == "predict":
        assert server is not None, f"{command.where}: predict before any serve"
        argv = ("boxflow", *server.predict_argv(argv))
    assert main(list(argv[1:])) == 0, command.where


@pytest.fixture(scope="module")
def guide_project(tmp_path_factory):
    """A scratch project beside a `shared` link, after every single-machine command of the guide ran."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the guide's examples need the real datasets in {SHARED_DATA}")
    root = tmp_path_factory.mktemp("guide")
    (root / "shared").symlink_to(SHARED_DATA.parent, target_is_directory=True)
    project = root / "project"
    project.mkdir()
    for name in ("docs", "benchmarks"):
        (project / name).symlink_to(REPOSITORY / name, target_is_directory=True)
    before = os.getcwd()
    os.chdir(project)
    server = None
    try:
        for command in guide_commands("sh"):
            started = time.monotonic()
            if command.argv[:2] == ("boxflow", "serve"):
                assert command.background, f"{command.where}: serve blocks; the guide must start it with &"
                if server:  # the reader stops the earlier server (Ctrl-C) before starting this one
                    server.stop()
                server = _Server(command)
            else:
                _run(command, server)
            print(f"{command.where} {' '.join(command.argv[:2])}: {time.monotonic() - started:.1f}s")
        yield project, server
    finally:
        os.chdir(before)
        if server:
            server.stop()


@pytest.mark.slow
def test_every_single_machine_command_of_the_guide_runs(guide_project):
    project, server = guide_project
    assert server is not None and server.serving.startswith("serving ")
    for name in ("bccd", "coco128", "coco128_masks", "coco128_yolo", "raccoon", "shapes", "stuff_semantic",
                 "stuff_panoptic"):
        assert (project / "models" / name / "1" / "saved_model.pb").is_file(), name
        assert name in server.serving
    assert (project / "bccd_boxes.png").is_file() and (project / "boxes.png").is_file()
    assert (project / "coco128_masks.png").is_file()  # a masked prediction, drawn
    # the served per-pixel answers, drawn: the semantic model's from a semantic-only dataset
    assert (project / "stuff_semantic.png").is_file() and (project / "stuff_panoptic.png").is_file()
    semantic_info = json.loads((project / "data" / "stuff_semantic" / "dataset_info.json").read_text())
    assert semantic_info["source"]["format"] == "label_pngs"
    assert {entry["kind"] for entry in semantic_info["classes"]} == {"stuff"}
    comparison = json.loads((project / "comparison-test.json").read_text())
    assert comparison["A"]["run"] == "runs/bccd" and comparison["B"]["run"] == "runs/bccd_faster_rcnn"
    assert (project / "comparison-test.differences.png").is_file()


@pytest.mark.slow
def test_the_listed_outputs_exist(guide_project):
    """Each path in the file listings of docs/outputs.md exists, unless its note says `only …`."""
    project, _ = guide_project
    listings = [block for block in guide_blocks("text") if block.file == "docs/outputs.md"
                and block.lines[0].endswith("/")]
    assert len(listings) == 3
    for block in listings:
        base = project / block.lines[0].strip()
        for line in block.lines[1:]:
            path, _, note = line.strip().partition("  ")
            if note.strip().startswith("only"):
                continue
            assert (base / path.split(",")[0].split(" …")[0].strip()).exists(), f"{block.file}: {line}"


@pytest.mark.slow
def test_the_rejected_line_shown_is_one_prepare_writes(guide_project):
    project, _ = guide_project
    shown = next(line for block in guide_blocks("text") if block.file == "docs/outputs.md"
                 for line in block.lines if line.startswith('{"boxes_lost"'))
    written = [json.loads(line) for line in (project / "data" / "bccd" / "rejected.jsonl").read_text().splitlines()]
    assert json.loads(shown) in written


@pytest.mark.slow
def test_the_request_mistakes_get_the_answers_troubleshooting_shows(guide_project):
    _, server = guide_project
    image = base64.b64encode(jpeg_bytes(64, 48)).decode()
    rows = markdown_table("docs/troubleshooting.md", "## Requests to a served model fail")
    assert len(rows) >= 6
    for mistake, body, answer in rows:
        request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}/v1/models/bccd:predict",
                                         data=body.replace("JPEG_B64", image).encode())
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=60)
        assert error.value.code == 400, mistake
        assert answer in json.load(error.value)["error"], mistake


@pytest.mark.slow
def test_the_refusals_troubleshooting_lists_are_what_the_commands_say(guide_project, tmp_path, capsys):
    import shlex
    import socket

    from beam_jobs.sources.image_paths import outside_images

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(jpeg_bytes(32, 32))
    (tmp_path / "file").write_bytes(jpeg_bytes(32, 32))
    rows = markdown_table("docs/troubleshooting.md", "## Refusals that protect your files and your machine")
    assert len(rows) >= 7
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        values = {"PHOTOS": str(photos), "BUSY": str(busy.getsockname()[1]), "MISSING": str(tmp_path / "missing"),
                  "A_FILE": str(tmp_path / "file")}

        def filled(text: str) -> str:
            for name, value in values.items():
                text = text.replace(name, value)
            return text

        for command, message in rows:
            argv = shlex.split(filled(command))
            assert main(argv[1:]) == 2, command
            err = capsys.readouterr().err.strip()
            assert err.splitlines()[-1].startswith(f"boxflow {argv[1]}: error: {filled(message)}"), (command, err)
    assert sorted(os.listdir(photos)) == ["holiday.jpg"]

    text = (REPOSITORY / "docs" / "troubleshooting.md").read_text()
    assert f"`{outside_images('x', '../../etc/passwd').detail}`" in text


@pytest.mark.slow
def test_the_request_limits_troubleshooting_quotes_are_the_answers(guide_project):
    import io
    import re

    from PIL import Image

    _, server = guide_project
    text = " ".join((REPOSITORY / "docs" / "troubleshooting.md").read_text().split())
    quoted = re.findall(r"`(the request has 65 instances[^`]*|input 'images', instance 0: the image is[^`]*)`", text)
    assert len(quoted) == 2
    huge = io.BytesIO()
    Image.new("L", (6000, 5000)).save(huge, "PNG")
    small = base64.b64encode(jpeg_bytes(16, 16)).decode()
    for images, answer in ((([small] * 65), quoted[0]), ([base64.b64encode(huge.getvalue()).decode()], quoted[1])):
        request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}/v1/models/bccd:predict",
                                         data=json.dumps({"instances": [{"b64": image} for image in images]}).encode())
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(request, timeout=60)
        assert error.value.code == 400 and json.load(error.value)["error"] == answer
