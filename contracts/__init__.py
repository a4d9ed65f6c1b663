"""The contracts every part of boxflow relies on (DESIGN.md): the record schema, the example proto,
the label map, the export schema, user-facing errors, box overlap, atomic files, settings files and
user paths. It sits at the bottom: it imports no other package of the project.
"""
