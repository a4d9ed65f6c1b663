"""A local Beam worker process: Beam's SDK harness with its start-up chatter filtered from stderr.

`prepare_job._local_runner` starts `python -m beam_jobs.local_worker` for each DirectRunner worker,
where Beam itself would start `python -m apache_beam.runners.worker.sdk_worker_main`.
"""

import logging
import runpy

from beam_jobs.beam_logging import quiet_beam_logging

if __name__ == "__main__":
    quiet_beam_logging(logging.WARNING)
    runpy.run_module("apache_beam.runners.worker.sdk_worker_main", run_name="__main__", alter_sys=True)
