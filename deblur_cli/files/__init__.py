"""Files on disk: the one door to image files and the rules every output obeys.

Holds ``fsutil`` (atomic writes, writable-folder probe, stale temp files) < ``decode``
(Pillow decoding; 32-bit samples scaled by ``samples``), ``encode16`` (16-bit PNG/TIFF
writers) < ``image_io`` (``load_image``, ``save_image``, ``save_picture``, ``quantize``,
the suffix lists) < ``paths`` (the output rule set, output naming, ``FileSet`` and the one
folder walker ``walk_images``).

Offers nothing at the package level: import the module you need (importing this package
loads neither Pillow nor numpy).

May import: core.
"""
