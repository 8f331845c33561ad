"""The network and inference on one image.

Holds ``architectures`` (the architecture registry: every network deblur can build, save,
load and size; its docstring is the contract an architecture keeps) < ``model`` (the
paper's network: ``ModelConfig``, ``MODEL_PRESETS``, ``AttentiveDeblurNet``) < ``attentive``
(its registry record: bounds, config inference, memory model), ``limits`` (device,
precision, tile and thread rules; no torch), ``tiling`` (tile plans, blend windows,
``Stitcher``, size-multiple padding; no model knowledge) < ``engine``
(``Engine(model, options).run(rgb, progress)``, the device, precision and out-of-memory
rules).

Offers nothing at the package level: import the module you need (importing this package
does not import torch).

May import: core.
"""
