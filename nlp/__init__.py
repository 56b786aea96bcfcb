"""Chinese text processing: sentiment scoring and topic matching."""
