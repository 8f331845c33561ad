"""The main path: `deblur image` and `deblur batch`, planned first (every input resolved,
every output named and checked against the one rule set of :mod:`deblur_cli.files.paths`),
then run with any deblurrer (a :class:`deblur_cli.Deblurrer`, whatever its method).

Holds ``batch_run`` (executes a planned list of jobs: decode next / deblur / encode
previous in three threads; per-file failures recorded) < ``image`` (``SaveOptions``,
``Plan``, ``plan_image``, ``run_image``, ``deblur_file``) < ``batch`` (``plan_batch``,
``run_batch``, ``deblur_batch``; output folders inside the input tree marked).

Offers those names here: ``from deblur_cli.pipeline import plan_image, run_image``.

May import: core, files.
"""

from deblur_cli.pipeline.batch import deblur_batch, plan_batch, run_batch
from deblur_cli.pipeline.batch_run import BatchEvent, BatchResult, ImageDeblurrer, KeepFn
from deblur_cli.pipeline.image import Plan, SaveOptions, check_output_path, deblur_file, plan_image, run_image

__all__ = [
    "BatchEvent", "BatchResult", "ImageDeblurrer", "KeepFn", "Plan", "SaveOptions", "check_output_path",
    "deblur_batch", "deblur_file", "plan_batch", "plan_image", "run_batch", "run_image",
]
