"""Checks of what the generator renders, run after it is rendered: the real tools over the
trees (validate, validate_argocd), the objects' form against the apiserver's (diff_clean), KFP
objects against KFP's schema (kfp_objects), and a live cluster against the render (live_diff).

Spec rules belong in spec/ (checked at load, naming the spec path); checks here read rendered
output or the world, never the spec's YAML.
"""
