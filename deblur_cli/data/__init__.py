"""Paired and sharp-photo data on disk, read and written.

Holds ``datasets`` (the GoPro, flat and sharp-photo layouts, ``find_pairs``, the
training datasets, photos listed by the one folder walker) < ``make_pairs`` (the work of
``deblur make-pairs``: ``plan_make_pairs``, ``run_make_pairs``, synthesised pairs written
through ``files.image_io``).

Offers nothing at the package level: import the module you need.

May import: core, files, synthesis.
"""
