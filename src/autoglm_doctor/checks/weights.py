"""weights.*: locating the model and proving the folder complete from headers only (weights area)."""
