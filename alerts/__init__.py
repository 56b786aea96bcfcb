"""Rule engine, incidents and alert delivery."""
