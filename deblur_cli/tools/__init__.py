"""The extras: the work behind the commands besides the main path (image and batch are
:mod:`deblur_cli.pipeline`), built on the network, the weights and the image files.

Each command's ``plan_*`` (inputs resolved, every output named and checked, weights
located) and ``run_*``:

- ``colormaps``, ``attention_render`` < ``attention``: ``deblur attention-map``;
- ``evaluate``: ``deblur evaluate`` (PSNR / SSIM / MS-SSIM on a paired test set);
- ``video_codec`` < ``video``: ``deblur video`` (PyAV frame loop);
- ``onnx_export``: ``deblur weights export-onnx``, checked with onnxruntime;
- ``doctor``: ``deblur doctor``'s bug-report information.

Offers nothing at the package level: import the module you need. The tools do not import
one another except as listed above.

May import: core, files, network, weights, methods, synthesis, quality, data, api.
"""
