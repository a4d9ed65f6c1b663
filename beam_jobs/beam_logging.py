"""Beam's start-up chatter kept out of the user's terminal; its other warnings and errors still show.

Beam logs these at WARNING (some at INFO, under a root level it raises itself) in every run of
`boxflow prepare`, in the launching process and in each local worker process, though none of
them says anything wrong with the user's job.
"""

from __future__ import annotations

import logging

_NOISE = (
    # The bigquery client stubs need google-apitools, which only DataflowRunner users install.
    "apitools not found",
    # The local workers never stage a pickled main session: the pipeline's code is installed.
    "No semi_persistent_directory found",
    "Logging handler created",
    # DirectRunner options the worker's option parser does not know.
    "Discarding unparseable args",
    # boxflow starts its own worker processes (beam_jobs/local_worker.py), see prepare_job._local_runner.
    "If direct_num_workers is not equal to 1",
)


class _BeamNoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_NOISE)


def quiet_beam_logging(level: int = logging.WARNING) -> None:
    """Gives the root logger a stderr handler at `level` (unless it has one) that drops Beam's chatter.

    Must run before Apache Beam is imported: Beam's import-time `logging.warning` would otherwise
    install an unfiltered handler first.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        if not any(isinstance(existing, _BeamNoiseFilter) for existing in handler.filters):
            handler.addFilter(_BeamNoiseFilter())
