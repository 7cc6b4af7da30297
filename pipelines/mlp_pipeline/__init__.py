"""The KFP v2 training pipeline: definition, compiler, local runner and scheduled submission."""
