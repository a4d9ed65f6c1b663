"""`boxflow train`: settings, strategy, optimizers, schedule, callbacks, the run directory, the job."""
