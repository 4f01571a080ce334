"""hal-9000's benchmark: every figure next to a floor measured in the same run."""
