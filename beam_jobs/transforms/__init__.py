"""The steps of `boxflow prepare`, each a composite `PTransform` around pure functions:
read (`read_sources`), name the classes (`class_names`), split into shards (`shard_assignment`),
validate, encode and write each shard (`shard_writing`), and write what the run rejected and
counted (`run_outputs`). `beam_jobs.prepare_pipeline` only wires them."""

# What every step counts, with Beam metrics, under one namespace.
METRICS_NAMESPACE = "boxflow"
# The tag of each step's rejections (`Rejection`s), beside its main output.
REJECTED = "rejected"
