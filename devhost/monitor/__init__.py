"""The monitor: a page of the local host for looking at a task hub's instances, and its metrics.

Never deployed (``devhost/`` stays out of the package). It reads the task hub's
``{Hub}Instances`` and ``{Hub}History`` tables through the store layer, so it works on the
host's own hub (``python -m devhost start`` serves it) and on any other one
(``python -m devhost monitor --connection ... --task-hub ...``).

Modules, lowest first: ``connection`` (which store to read), ``payloads`` (the API's shapes),
``reader`` (instance list, instance, entities), ``timeline`` (a history as bars over time),
``metrics``, ``plugin`` (what an app adds: event forms, per-workflow views, plain-words
status), ``actions`` (what the page may do to an instance), ``guard`` (who may ask),
``server`` (the routes and the JSON API), ``launch`` (in the host, or on its own).
"""
