"""`boxflow demo`: the product end to end on data it makes itself.

At this stage: `synth` → `prepare` (Beam, DirectRunner). Later stages (train,
evaluate, export, serve, predict) join as they land.
"""

from __future__ import annotations

import os
import time

from boxflow.synth import ANNOTATIONS_FILE, SynthConfig, write_synth_dataset


def run_demo(workdir: str, num_images: int) -> int:
    from beam_jobs.prepare_job import format_summary, run
    from beam_jobs.prepare_settings import PrepareSettings

    synth_dir = os.path.join(workdir, "synth")
    data_dir = os.path.join(workdir, "data")
    started = time.monotonic()
    print(f"[demo 1/2] synth: {num_images} images of shapes → {synth_dir}", flush=True)
    write_synth_dataset(synth_dir, num_images, SynthConfig(), seed=0)
    print(f"[demo 2/2] prepare: COCO JSON → TFRecord shards in {data_dir}", flush=True)
    info = run(PrepareSettings(source_format="coco", input_path=os.path.join(synth_dir, ANNOTATIONS_FILE),
                               out_dir=data_dir, num_shards=4))
    print(format_summary(info))
    print(f"[demo] done in {time.monotonic() - started:.0f}s; dataset in {data_dir}")
    return 0
