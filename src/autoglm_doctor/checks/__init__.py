"""Built-in checks: one module per area."""
