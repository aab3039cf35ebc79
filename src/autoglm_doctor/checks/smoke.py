"""smoke.load-infer: the real load-and-infer, in a subprocess of the target interpreter (smoke area)."""
