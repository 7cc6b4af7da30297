"""Evaluate step: held-out metrics, confusion matrix plot and the promotion gate."""
