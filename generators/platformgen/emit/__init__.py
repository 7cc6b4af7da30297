"""Emitters: map manifests and patches to `{relative path: file text}`."""
