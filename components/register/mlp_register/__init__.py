"""Register step and registry CLI: list, show, register and promote model versions."""
