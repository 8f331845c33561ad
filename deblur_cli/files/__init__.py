"""Files on disk: the one door to image files and the rules every output obeys.

Holds ``formats`` (one record per image format: suffixes, Pillow name, media type, alpha,
16 bits, largest side, metadata it holds; every format table is derived from it), ``limits``
and ``bundled`` (no numpy, Pillow or torch: the pixel limit, where the bundled weights lie),
``fsutil`` (atomic writes that never replace without ``overwrite``,
writable-folder probe, stale temp files) < ``ledger`` (the user cache, the record of the
images deblur wrote) < ``decode`` (Pillow decoding; 32-bit samples scaled by ``samples``),
``metadata`` (DPI, XMP, gamma, comments), ``encode16`` (16-bit PNG/TIFF writers) <
``image_io`` (``load_image``, ``save_image``, ``save_picture``, ``quantize``, the suffix
lists) < ``memory`` (the Python API's images, decoded as files are), ``writers`` (each
writer's limits), ``paths`` (the output rule set, output naming, ``FileSet`` and the one
folder walker ``walk_images``).

Offers nothing at the package level: import the module you need (importing this package
loads neither Pillow nor numpy).

May import: core.
"""
