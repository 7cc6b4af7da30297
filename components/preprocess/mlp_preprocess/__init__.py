"""Preprocess step: stratified split and feature statistics."""
