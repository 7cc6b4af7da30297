"""Explicit seeding. Every step takes ``--seed`` and calls :func:`set_global_seed` once."""

from __future__ import annotations

import os
import random
import sys

import numpy as np

DEFAULT_SEED = 42


def set_global_seed(seed: int) -> None:
    """Seed Python, NumPy and (when imported) TensorFlow, and make TensorFlow ops deterministic."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        tf.keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()
