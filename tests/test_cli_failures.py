"""Every command walked through the ways a user's paths and ports fail: exit status 2 and one
stderr line naming the flag or file, never a traceback; through the real command in a user's
environment, that line is all of stderr; a failing machine (a full disk) exits 1."""

import os
import pathlib
import socket
import subprocess
import sys

import pytest

from boxflow.cli import main
from tests.builders import free_ports, jpeg_bytes


@pytest.fixture(scope="module")
def places(tiny_run, exported, tmp_path_factory):
    """Paths the cases below fill in: a prepared dataset, a trained run, an exported model base,
    an image, a plain file (a folder under it cannot be made) and a missing folder."""
    root = tmp_path_factory.mktemp("cli_failures")
    data, run = tiny_run
    (root / "image.jpg").write_bytes(jpeg_bytes(64, 48))
    (root / "file").write_text("a file, not a folder")
    (root / "narrow.yaml").write_text("fpn_channels: 0\n")
    return {"data": str(data), "run": str(run), "models": str(exported(run)), "image": str(root / "image.jpg"),
            "file": str(root / "file"), "missing": str(root / "missing"), "narrow": str(root / "narrow.yaml")}


@pytest.fixture(scope="module")
def busy_port():
    """A port some other program listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield str(listener.getsockname()[1])


CASES = [
    (["synth", "--out", "{file}", "--images", "2"], "--out {file}: exists and is not a folder"),
    (["synth", "--out", "{missing}/s", "--max-objects", "-1"], "--max-objects must be 0 or more, got -1"),
    (["prepare", "--format", "coco", "--input", "{missing}/a.json", "--out", "{missing}/o"], "--input {missing}/a.json"),
    (["show", "--data", "{missing}", "--out", "{file}.png"], "--data {missing}: no label_map.pbtxt"),
    (["show", "--data", "{data}", "--out", "{missing}/g.png"], "--out {missing}/g.png: the folder {missing} does not"),
    (["show", "--data", "{data}", "--out", "{data}"], "--out {data}: is a folder"),
    (["train", "--data", "{missing}", "--out", "{missing}/run"], "--data {missing}"),
    (["train", "--data", "{data}", "--out", "{file}/run", "--epochs", "1"], "--out {file}/run: cannot create the folder"),
    # A setting's error names its flag where it has one, else its field (set in a --config file).
    (["train", "--data", "{data}", "--out", "{missing}/run", "--image-size", "200"],
     "--image-size must be a multiple of 128"),
    (["train", "--data", "{data}", "--out", "{missing}/run", "--time-budget", "-1"],
     "--time-budget must be positive minutes, got -1.0"),
    (["train", "--data", "{data}", "--out", "{missing}/run", "--config", "{narrow}"],
     "error: fpn_channels must be at least 1, got 0"),
    (["evaluate", "--data", "{data}", "--run", "{missing}"], "--run {missing}: cannot read config.json"),
    (["compare", "{run}", "{missing}", "--data", "{data}"], "{missing}: neither a run directory of boxflow train"),
    (["compare", "{run}", "{run}", "--data", "{missing}"], "{missing}: no dataset_info.json"),
    (["compare", "{run}", "{run}", "--data", "{data}", "--out", "{file}/c.json"], "--out {file}: cannot create the folder"),
    (["compare", "{run}", "{run}", "--data", "{data}", "--out", "{data}"], "--out {data}: is a folder"),
    (["export", "--run", "{missing}", "--out", "{missing}/m/shapes"], "--run {missing}"),
    (["export", "--run", "{run}", "--out", "{file}/m/shapes"], "--out {file}/m/shapes: cannot create the folder"),
    (["serve", "--model-base", "{missing}"], "--model-base {missing}"),
    (["serve", "--model-base", "{models}", "--max-batch-size", "0"], "--max-batch-size must be at least 1, got 0"),
    (["serve", "--model-base", "{models}", "--batch-timeout-ms", "-1"], "--batch-timeout-ms must be between 0 and"),
    (["serve", "--model-base", "{models}", "--max-instances", "0"], "--max-instances must be at least 1, got 0"),
    (["serve", "--model-base", "{models}", "--max-image-pixels", "0"], "--max-image-pixels must be at least 1"),
    (["serve", "--model-base", "{models}", "--max-request-bytes", "10"], "--max-request-bytes must be at least 1024"),
    (["serve", "--model-base", "{models}", "--poll-seconds", "0"], "--poll-seconds must be positive, got 0.0"),
    (["serve", "--model-base", "{models}", "--rest-port", "0", "--grpc-port", "{port}"],
     "--grpc-port: cannot listen for gRPC on 127.0.0.1:{port}: Address already in use"),
    (["serve", "--model-base", "{models}", "--rest-port", "{port}", "--grpc-port", "0"],
     "--rest-port: cannot listen for REST on 127.0.0.1:{port}"),
    (["predict", "--name", "shapes", "--image", "{missing}/a.jpg"], "--image {missing}/a.jpg: No such file"),
    (["predict", "--name", "shapes", "--image", "{image}", "--label-map", "{missing}/l.pbtxt"],
     "--label-map {missing}/l.pbtxt: cannot read it (No such file or directory)"),
    (["predict", "--name", "shapes", "--image", "{image}", "--out", "{missing}/p.png"],
     "--out {missing}/p.png: the folder {missing} does not exist"),
    (["predict", "--name", "shapes", "--image", "{image}", "--server", "http://127.0.0.1:{closed_port}"],
     "http://127.0.0.1:{closed_port}"),
    (["demo", "--workdir", "{file}"], "--workdir {file}: exists and is not a folder"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(case[0][:2]) + f" #{i}" for i, case in enumerate(CASES)])
def test_each_failure_is_one_line_with_exit_2(places, busy_port, capsys, args, message):
    values = {**places, "port": busy_port, "closed_port": str(free_ports(1)[0])}  # nothing listens there
    assert main([arg.format(**values) for arg in args]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines[-1].startswith(f"boxflow {args[0]}: error: "), err
    assert message.format(**values) in lines[-1], err
    assert not [line for line in lines[:-1] if "error" in line.lower()], err


def test_all_commands_are_walked():
    from boxflow.cli import _COMMANDS

    assert {case[0][0] for case in CASES} == set(_COMMANDS)


REPOSITORY = pathlib.Path(__file__).resolve().parents[1]


def as_a_user(*args: str, limit_file_bytes=None) -> subprocess.CompletedProcess:
    """`python -m boxflow ARGS` with only what a user's shell has: no TF_CPP_MIN_LOG_LEVEL, nothing
    of the test process's own.

    A file-size limit is set by the child before it becomes the command, as `ulimit -f` is set by a
    shell, not by `preexec_fn`: that would make Python fork this process, whose live gRPC (grpcio
    1.85, grpc/grpc#43055) restarts its poller in the forked child, where `close_fds` then closes the
    poller's epoll descriptor; the child wrote "epoll_wait error: Bad file descriptor" before its
    exec, or aborted (45 of 300 spawns with RPCs running; none without `preexec_fn`, measured).
    """
    environment = {name: os.environ[name] for name in ("PATH", "HOME", "PYTHONPATH") if name in os.environ}
    command = [sys.executable, "-m", "boxflow", *args]
    if limit_file_bytes is not None:
        environment["PYTHONDONTWRITEBYTECODE"] = "1"  # a cut-off .pyc would break later imports
        limit = (f"import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_file_bytes}, "
                 f"{limit_file_bytes})); os.execv(sys.argv[1], sys.argv[1:])")
        command = [sys.executable, "-c", limit, *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, cwd=REPOSITORY)


@pytest.mark.parametrize("case", ["empty model base", "busy gRPC port", "missing data"])
def test_a_failing_command_writes_exactly_one_line_in_a_users_environment(places, busy_port, tmp_path, case):
    empty = tmp_path / "empty"
    empty.mkdir()
    args, message = {
        "empty model base": (["serve", "--model-base", str(empty)],
                             f"boxflow serve: error: --model-base {empty}: no MODEL_BASE/NAME/VERSION SavedModel"),
        "busy gRPC port": (["serve", "--model-base", places["models"], "--rest-port", "0", "--grpc-port", busy_port],
                           f"boxflow serve: error: --grpc-port: cannot listen for gRPC on 127.0.0.1:{busy_port}: "
                           "Address already in use"),
        "missing data": (["train", "--data", places["missing"], "--out", str(tmp_path / "run")],
                         f"boxflow train: error: --data {places['missing']}: cannot read dataset_info.json"),
    }[case]
    result = as_a_user(*args)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message), result.stderr


def test_a_full_disk_exits_1_with_one_line(tmp_path):
    # The file-size limit makes every write past 200 bytes fail with EFBIG, as a full disk fails with ENOSPC.
    result = as_a_user("synth", "--out", str(tmp_path / "synth"), "--images", "4", limit_file_bytes=200)
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("boxflow synth: error: "), result.stderr
    assert "File too large" in result.stderr
