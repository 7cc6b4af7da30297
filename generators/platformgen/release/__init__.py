"""Releases as reviewed spec edits: image pins (images.py: set-image, promote) and model
versions (models.py: promote-model), each one edit of platform.yaml that keeps everything
around it (spec_text.py)."""

from __future__ import annotations

from platformgen.errors import ReleaseError
from platformgen.release.images import (
    ImageReference,
    effective_reference,
    parse_reference,
    promote,
    requires_digests,
    set_image,
)
from platformgen.release.models import (
    DEFAULT_CANARY_PERCENT,
    RegistryCheck,
    Rollout,
    ServedModel,
    check_registry,
    edit_rollout,
    move_production_pointer,
    plan_rollout,
    rollout,
    served_model,
)
from platformgen.release.spec_text import remove_value, set_pin, set_value

__all__ = [
    "DEFAULT_CANARY_PERCENT",
    "ImageReference",
    "RegistryCheck",
    "ReleaseError",
    "Rollout",
    "ServedModel",
    "check_registry",
    "edit_rollout",
    "effective_reference",
    "move_production_pointer",
    "parse_reference",
    "plan_rollout",
    "promote",
    "remove_value",
    "requires_digests",
    "rollout",
    "served_model",
    "set_image",
    "set_pin",
    "set_value",
]
