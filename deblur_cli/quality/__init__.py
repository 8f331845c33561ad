"""Image quality measures.

Holds ``metrics`` (PSNR, SSIM, MS-SSIM against a sharp reference; no imports from the
package), ``regions`` (the blur effect tile by tile: a photo's blurriest region) and
``score`` (the blur score without a reference, Crete-Roffet blur effect, of the whole frame
and its blurriest region; the one verdict rule, the ``keep`` test of ``batch --only-blurry``
and the folder report of ``deblur score``).

Offers nothing at the package level: import the module you need.

May import: core, files.
"""
