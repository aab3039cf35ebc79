"""service.*: a served OpenAI-compatible endpoint and its auth (smoke/service area)."""
