"""The network and inference on one image.

Holds ``model`` (``ModelConfig``, ``MODEL_PRESETS``, ``AttentiveDeblurNet``), ``tiling``
(tile plans, blend windows, ``Stitcher``, size-multiple padding; no model knowledge) <
``engine`` (``InferenceOptions``, ``Deblurrer(model, options).run(rgb, progress)``, the
device, precision and out-of-memory rules).

Offers nothing at the package level: import the module you need (importing this package
does not import torch).

May import: core.
"""
