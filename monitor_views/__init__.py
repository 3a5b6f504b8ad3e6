"""What this app shows in the local host's monitor (``devhost/monitor/plugin.py`` describes it).

The monitor knows task hubs, not this app; it imports this package when it finds it next to
``function_app.py`` and calls ``plugin``'s methods with plain JSON values. From here it gets:
the forms of the events each instance accepts (from the models registered in
``models.registry``, plus the per-level decision events of approval chains), custom status in
plain words, the app's own read models (documents, orders, approval tasks) and ledgers as
views, a panel per workflow on the instance page, and the facts behind the metrics
(compensations, approval latency and outcome). Local tooling only: never imported by
``function_app.py`` and left out of the deployment package (``.funcignore``).
"""

from __future__ import annotations

from monitor_views import facts, lists, panels, status


class AppMonitorPlugin:
    """The app's side of the monitor's plug-in surface (each method is one module's function)."""

    describe_status = staticmethod(status.describe_status)
    instance_events = staticmethod(status.instance_events)
    validate_event = staticmethod(status.validate_event)
    views = staticmethod(lists.views)
    view = staticmethod(lists.view)
    instance_panel = staticmethod(panels.instance_panel)
    facts = staticmethod(facts.facts)


plugin = AppMonitorPlugin()
