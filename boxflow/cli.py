"""The `boxflow` command line. Arguments are read and checked here and in `boxflow/commands/`, nowhere else."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from beam_jobs.beam_logging import quiet_beam_logging
from boxflow.commands import compare, demo, evaluate, export, predict, prepare, serve, show, synth, train
from boxflow.errors import EXIT_BAD_INPUT, BoxflowError

# In the order `boxflow --help` lists them: the dataflow from data to a served model.
_COMMANDS = {module.__name__.rsplit(".", 1)[1]: module
             for module in (synth, prepare, show, train, evaluate, compare, export, serve, predict, demo)}
# Only prepare takes arguments argparse does not know: they are Beam pipeline options.
_TAKES_EXTRA = {"prepare"}


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


def _quiet_libraries() -> None:
    """Keeps TensorFlow's and Beam's start-up chatter out of the user's terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_beam_logging()
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    # Beam's local job service re-logs each worker's start-up warnings; they are noise here.
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(logging.ERROR)


def main(argv: Optional[Sequence[str]] = None) -> int:
    _quiet_libraries()
    args, extra = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        return _COMMANDS[args.command].run(args, extra)
    except BoxflowError as error:
        print(f"boxflow {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        # The commands check the paths they are given; this catches a file that fails later
        # (a full disk, a file removed meanwhile): still one line naming it, not a traceback.
        where = f"{error.filename}: " if error.filename else ""
        print(f"boxflow {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"boxflow {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
