"""Notification channels (see :mod:`alerts.channels.base`)."""
