"""config.*: syntax, env vars, values and sample requests of the deployment config (config area)."""
