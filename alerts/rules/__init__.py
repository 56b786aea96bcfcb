"""Rule types: pure state machines fed scored mentions (see :mod:`alerts.rules.base`)."""
