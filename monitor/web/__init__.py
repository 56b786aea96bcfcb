"""Front end: the web console (issue 12) — Starlette + Jinja2 + htmx, beside :mod:`monitor.cli`.

Like the CLI it only parses, calls :mod:`monitor.app.service` and renders. Modules:
:mod:`.app` (``create_app``: middleware, error pages, settings and session secret),
:mod:`.auth` (sessions, ``require(role)``, login throttle), :mod:`.security` (CSP and other headers,
CSRF), :mod:`.templating` (Jinja environment, ``render``), :mod:`.pages` (one module per screen).

A screen module ``monitor/web/pages/<name>.py`` (then one line in ``pages.SCREENS``)::

    from starlette.routing import Route
    from monitor.app.service import incidents
    from monitor.web.auth import context, now, require
    from monitor.web.templating import render

    @require("viewer")
    def queue(request, user):                       # sync: runs in the thread pool
        rows = incidents.list_incidents(context(request), now())
        return render(request, "incidents.html", {"incidents": rows})

    @require("responder")
    def ack(request, user):                         # a POST: CSRF already checked; form in request.state.form
        incidents.acknowledge(context(request), request.path_params["id"], actor=user.name, now=now())
        return RedirectResponse(f"/incidents/{request.path_params['id']}", 303)

    routes = [Route("/incidents", queue), Route("/incidents/{id:int}/ack", ack, methods=["POST"])]

In templates: ``{{ csrf_input() }}`` inside every ``<form method="post">`` (htmx requests carry the
token by themselves, from ``hx-headers`` on <body>), ``{{ url | safe_url }}`` for links from mentions.
"""
