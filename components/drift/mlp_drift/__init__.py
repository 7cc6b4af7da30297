"""Feature drift monitoring: PSI and KS per feature against the training reference."""
