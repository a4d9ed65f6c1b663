"""Source readers: one module per annotation format, each turning that format into `SourceImage`s."""
