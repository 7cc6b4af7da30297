"""platformgen: render a GitOps ML platform from one spec file."""

__version__ = "0.1.0"
