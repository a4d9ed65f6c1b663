"""boxflow: the application, the `boxflow` command line on top of every stage.

The stages live in the top-level packages `beam_jobs`, `pipeline`, `keras_models` and `serving`;
what all of them share (the record schema, the export schema, the label map, user-facing errors,
file conventions) in `contracts`. No package imports this one (DESIGN.md §1).
"""
