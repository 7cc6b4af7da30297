"""The platform spec: typed models, loading and cross-field rules."""
