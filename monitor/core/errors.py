"""The one exception tree of the project.

Every error a user can cause or meet is a subclass of :class:`MonitorError`.
Third-party exceptions (httpx, feedparser, SQLAlchemy, YAML, pydantic) are
translated at the edge where they happen, keeping the original as
``__cause__``::

    MonitorError
    ├── ConfigError          a config file that cannot be used (names file and field)
    ├── SourceError          one source failed this poll (names source and reason)
    │   ├── FetchError       network or HTTP failure (status code when there is one)
    │   ├── ParseError       the payload could not be read as the expected format
    │   └── Deferred         not a failure: the source chose not to poll now (slow-down)
    ├── StorageError         the database refused an operation
    │   └── LeaseHeld        another live daemon polls this database
    ├── ChannelError         one notification channel failed to deliver
    ├── ModelError           a sentiment model file is missing, unreadable or of another version
    ├── ExpressionError      a topic expression cannot be parsed (also a ValueError)
    └── UsageError           a request that cannot be done (unknown id, wrong state)

    Cancelled (a BaseException, not an error) a job stopped by a shutdown or reload

The CLI turns these into one line on stderr and an exit code; the daemon logs
them with the source or channel name and carries on.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error raised on purpose by this project."""


class ConfigError(MonitorError):
    """A configuration file is missing, unreadable or invalid.

    ``problems`` holds one line per problem, each already prefixed with the
    file name and field path, e.g. ``config.yaml: rules[2].window: ...``.
    """

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class SourceError(MonitorError):
    """A source could not deliver items on this poll."""

    def __init__(self, source: str, reason: str, *, status: int | None = None):
        self.source = source
        self.reason = reason
        self.status = status
        super().__init__(f"source {source!r}: {reason}")


class FetchError(SourceError):
    """Network failure or an HTTP status that is not a success."""


class ParseError(SourceError):
    """The payload was fetched but is not a valid feed / JSON / line."""


class Deferred(SourceError):
    """The source chose not to poll now (it is slowing down after 429/418/403 or a long
    ``Retry-After``). Not a failure: nothing is recorded, the next run tries again."""


class StorageError(MonitorError):
    """The database could not be opened, migrated or written."""


class LeaseHeld(StorageError):
    """Another live daemon polls this database."""


class LeaseLost(StorageError):
    """This node no longer holds the lease its work needs (another node took it over)."""


class ChannelError(MonitorError):
    """A notification channel failed to deliver one message."""

    def __init__(self, channel: str, reason: str, *, status: int | None = None):
        self.channel = channel
        self.reason = reason
        self.status = status
        super().__init__(f"channel {channel!r}: {reason}")


class ModelError(MonitorError):
    """A model file is missing, unreadable, or of another format version."""


class ExpressionError(MonitorError, ValueError):
    """A topic expression (``鲜丰 and (拉肚子 or 腹泻)``) cannot be parsed."""


class UsageError(MonitorError):
    """A command asked for something that cannot be done (unknown id, bad state)."""


class Cancelled(BaseException):
    """A job was cancelled (shutdown or reload) and stopped where it was, storing nothing.

    A :class:`BaseException`, like :class:`asyncio.CancelledError`, so that the ``except
    Exception`` guards which keep one bad item or source from stopping the others do not
    swallow it: it travels up to the job runner, which expects it.
    """
