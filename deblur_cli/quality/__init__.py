"""Image quality measures.

Holds ``metrics`` (PSNR, SSIM, MS-SSIM against a sharp reference; no imports from the
package) and ``score`` (the blur score without a reference, Crete-Roffet blur effect, the
``keep`` test of ``batch --only-blurry`` and the folder report of ``deblur score``).

Offers nothing at the package level: import the module you need.

May import: core, files.
"""
