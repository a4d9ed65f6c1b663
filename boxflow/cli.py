"""The `boxflow` command line. Arguments are read and checked here and in `boxflow/commands/`, nowhere else."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Optional, Sequence

from beam_jobs.beam_logging import quiet_beam_logging
from boxflow.commands import compare, demo, evaluate, export, predict, prepare, serve, show, synth, train
from contracts.errors import EXIT_BAD_INPUT, EXIT_FAILURE, BoxflowError, SettingError

# In the order `boxflow --help` lists them: the dataflow from data to a served model.
_COMMANDS = {module.__name__.rsplit(".", 1)[1]: module
             for module in (synth, prepare, show, train, evaluate, compare, export, serve, predict, demo)}
# Only prepare takes arguments argparse does not know: they are Beam pipeline options.
_TAKES_EXTRA = {"prepare"}
# The commands that never load TensorFlow (and so need not pay its start-up).
_WITHOUT_TENSORFLOW = {"synth"}
# The settings whose flag is not their field's name with dashes.
_FLAG_OF_FIELD = {"time_budget_minutes": "--time-budget", "run_dir": "--out", "data_dir": "--data"}


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one subparser per command."""
    parser = argparse.ArgumentParser(prog="boxflow", description="Object-detection pipeline on TensorFlow/Keras.")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in _COMMANDS.values():
        command.add_to(commands)
    return parser


def parse_arguments(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """The parsed arguments and the Beam options left over; exits with status 2 on bad ones, as argparse does."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in _TAKES_EXTRA:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args, extra


def flag_for(command: str, field: str) -> Optional[str]:
    """The flag of `command` that sets the setting `field`, None when only a settings file does.
    The one place where the library's field names become the command line's flags."""
    flag = _FLAG_OF_FIELD.get(field, "--" + field.replace("_", "-"))
    commands = next(action for action in build_parser()._actions if action.dest == "command")
    options = {option for action in commands.choices[command]._actions for option in action.option_strings}
    return flag if flag in options else None


def error_line(command: str, error: BoxflowError) -> str:
    """The one line a failing command prints: each setting it names by the flag that sets it, where
    the command has one."""
    message = str(error)
    if isinstance(error, SettingError):
        problem = error.problem
        for field in error.mentions:
            problem = re.sub(rf"\b{field}\b", flag_for(command, field) or field, problem)
        message = f"{flag_for(command, error.field) or error.field} {problem}"
    return f"boxflow {command}: error: {message}"


def _quiet_libraries() -> None:
    """Keeps TensorFlow's and Beam's start-up chatter out of the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # a user's own setting stays
    quiet_beam_logging()
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    # Beam's local job service re-logs each worker's start-up warnings; they are noise here.
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)


def prefer_onednn_kernels() -> None:
    """Asks TensorFlow, before it loads, for its oneDNN CPU kernels, unless the user chose
    (`TF_ENABLE_ONEDNN_OPTS=0` keeps Eigen's).

    TensorFlow turns them on by itself only on CPUs with AVX-512's deep-learning extensions. On a
    2-core AVX2 AMD EPYC they made a training step at 256 px, batch 16, 1.3x faster for Faster R-CNN
    (0.72 s against 0.94), 1.34x for Mask R-CNN (0.92 s against 1.23) and 1.25x for a tiny RetinaNet.
    Their convolutions round differently from Eigen's, far below what training notices.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def _start_tensorflow_quietly() -> None:
    """Imports TensorFlow and finds its devices with the process's stderr pointed at /dev/null.

    TensorFlow 2.20's C++ start-up lines (absl's "before absl::InitializeLog()" warning, oneDNN's
    notice, the CUDA driver probe's "Could not find cuda drivers" and "failed call to cuInit")
    ignore TF_CPP_MIN_LOG_LEVEL, so only the file descriptor keeps them out of a failing command's
    one line. A user who asked for TensorFlow's info or warnings (TF_CPP_MIN_LOG_LEVEL 0 or 1) sees
    them; a Python error in the import still reaches stderr, raised after it is restored.
    """
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2") in ("0", "1"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    silent = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(silent, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(silent)


def main(argv: Optional[Sequence[str]] = None) -> int:
    _quiet_libraries()
    prefer_onednn_kernels()
    args, extra = parse_arguments(sys.argv[1:] if argv is None else argv)
    if args.command not in _WITHOUT_TENSORFLOW:
        _start_tensorflow_quietly()
    try:
        return _COMMANDS[args.command].run(args, extra)
    except BoxflowError as error:
        print(error_line(args.command, error), file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        # The commands check the paths they are given; this catches a file that fails later (a
        # full disk, a file removed meanwhile): the machine's failure, not bad input, and still
        # one line naming it, not a traceback.
        where = f"{error.filename}: " if error.filename else ""
        print(f"boxflow {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"boxflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
