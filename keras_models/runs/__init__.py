"""A `boxflow train` run directory: its layout, and the trained model it describes."""
