"""Pollers that gather mentions from configured feeds (see :mod:`sources.base`)."""
