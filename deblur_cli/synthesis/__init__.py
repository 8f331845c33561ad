"""The blur model: realistic, spatially varying motion blur made from sharp photos. Pure:
tensors and arrays in and out, no files.

Holds ``config`` (``SynthesisConfig``, ``VARIED``, strengths and their classes) <
``motion`` (camera-path families and the motion plan, drawn before any pixel) <
``render`` (warps, objects, noise, JPEG) < ``blur`` (crops and :func:`synthesize`, the
entry point). See docs/synthesis.md.

Offers the public names of all four, re-exported here: ``from deblur_cli.synthesis import
SynthesisConfig, synthesize``.

May import: core, files.
"""

from deblur_cli.synthesis.blur import random_region, synthesize
from deblur_cli.synthesis.config import (
    MILD_MEDIUM_BETA,
    STRENGTH_CLASSES,
    SYNTHESIS_PRESETS,
    VARIED,
    SynthesisConfig,
    config_for_class,
    expand_synthesis_preset,
    sample_strength,
    strength_class,
)
from deblur_cli.synthesis.motion import (
    OBJECT_SHAPES,
    TRAJECTORY_FAMILIES,
    _plan_motion,  # noqa: F401 - the motion plan, for tests and bench scripts
    family_trajectory,
    random_trajectory,
)

__all__ = [
    "MILD_MEDIUM_BETA", "OBJECT_SHAPES", "STRENGTH_CLASSES", "SYNTHESIS_PRESETS", "TRAJECTORY_FAMILIES",
    "VARIED", "SynthesisConfig", "config_for_class", "expand_synthesis_preset", "family_trajectory",
    "random_region", "random_trajectory", "sample_strength", "strength_class", "synthesize",
]
