"""Validate step: declared schema, ranges, nulls, class balance, train/serve skew."""
