"""Golden files of the reporters and the fixed synthetic report they are rendered from."""
