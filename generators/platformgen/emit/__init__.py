"""Emitters: map manifests and patches (and the image builds) to `{relative path: file text}`."""
