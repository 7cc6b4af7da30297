"""Errors a user can act on. Anything else is a bug and keeps its traceback."""

from __future__ import annotations


class PlatformgenError(Exception):
    """Base class: printed as `error: <message>` with exit status 1."""


class SpecError(PlatformgenError):
    """The spec is invalid. Carries every problem found, each naming its spec path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StaleOutputError(PlatformgenError):
    """Generated files on disk differ from what the spec renders."""


class ToolError(PlatformgenError):
    """An external tool (kustomize, kubeconform, ...) is missing or failed."""


class ReleaseError(PlatformgenError):
    """A release request that cannot be carried out (bad reference, unknown name, policy)."""
