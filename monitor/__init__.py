"""舆情哨兵 — the monitoring daemon, its configuration, storage and command line."""

__version__ = "0.1.0"
