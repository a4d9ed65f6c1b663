# A Beam worker image with boxflow installed, for `boxflow prepare` on Dataflow, Flink or Spark.
# Build it from the repository root after `pip wheel --no-deps -w dist .` (docs/scaling_out.md).
# The base is Beam's own Python 3.11 SDK image at the Beam version boxflow pins, so the worker
# harness matches the one that launched the job.
FROM apache/beam_python3.11_sdk:2.77.0
COPY dist/boxflow-0.1.0-py3-none-any.whl /tmp/
RUN pip install --no-cache-dir /tmp/boxflow-0.1.0-py3-none-any.whl && rm /tmp/boxflow-0.1.0-py3-none-any.whl
