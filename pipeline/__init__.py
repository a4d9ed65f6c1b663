"""tf.data input: prepared TFRecord shards → batches the detectors take (DESIGN.md §3–4)."""
