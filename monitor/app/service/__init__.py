"""The service layer: every operation a person performs, one function each, for every front end.

The CLI (:mod:`monitor.cli`) and the coming web console call the same functions; they only parse
input, call, and render what comes back. Each function takes a :class:`Context` first (the config,
and the database opened and migrated on first use), then its arguments; the actor and the time are
always passed in (``actor=``, ``now=``), never read from the environment or the clock here. A
request that cannot be done raises :class:`monitor.core.errors.UsageError` (or another
:class:`~monitor.core.errors.MonitorError`) with a message for people (naming a field by its CLI
option, e.g. ``--for``, the name people know from the docs); results are frozen records.

    ctx = Context(load_config("monitor.yaml"))
    incidents.acknowledge(ctx, 3, actor="小王", now=utcnow())
    silences.add(ctx, topic="鲜丰奶茶", for_="2h", reason="发布会期间", actor="小王", now=utcnow())
    status.status(ctx, now=utcnow()).alive

Modules: :mod:`.incidents` (list, view, acknowledge, resolve, note, assign, plan steps),
:mod:`.silences` (add, list, expire), :mod:`.sources` (source health), :mod:`.status` (daemon,
incidents, queue, sources), :mod:`.sentiment` (label a mention; train, evaluate, score),
:mod:`.reports` (复盘 reports: files, or documents to serve), :mod:`.mentions` (search, a mention's
story and corrections), :mod:`.notifications` (pages and their delivery attempts), :mod:`.users`
(console users: roles, passwords, log in). No module here runs SQL: they call stores and
:mod:`alerts`; the front end renders the records (tables, JSON, pages) and maps errors to its own answers.
"""

from monitor.app.service.context import Context, local_time

__all__ = ["Context", "local_time"]
