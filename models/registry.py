"""Which orchestrators the generic HTTP endpoints may start, and which events each one accepts.

A workflow registers itself next to its orchestrator::

    register_workflow("hello_sequence", HelloSequenceInput, public=True)
    register_workflow("approve_order", ApproveOrderInput, events={"Approval": ApprovalEvent})

The starter validates a request body against the input model and the raise-event endpoint
validates a payload against the event model before anything reaches the durable runtime.
Only a workflow registered ``public`` can be started through the generic starter, and only its
instances are managed by the generic instance routes; the others are started and driven by
their own routes (which check what the generic ones cannot) or run as sub-orchestrations.
Orchestrator and event names are looked up case-insensitively; the registered spelling is the
one used with the runtime, because ``wait_for_external_event`` matches names exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pydantic import BaseModel

__all__ = [
    "WorkflowSpec",
    "get_public_workflow",
    "get_workflow",
    "register_workflow",
    "registered_workflows",
]


@dataclass(frozen=True)
class WorkflowSpec:
    """An orchestrator the HTTP API can start, with the models of what it receives.

    Parameters
    ----------
    name : str
        The orchestrator function name, as registered with the durable runtime.
    input_model : type[BaseModel]
        The model of the orchestrator's input (the starter's request body).
    events : Mapping[str, type[BaseModel]]
        Event name -> model of the event's payload.
    public : bool
        Whether the generic starter may start it and the instance routes manage it.
    routes : Mapping[str, str]
        Event name -> the workflow's own route that raises it (``"POST /api/x/{instanceId}"``);
        the generic events endpoint refuses those events and names the route.
    """

    name: str
    input_model: type[BaseModel]
    events: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    public: bool = False
    routes: Mapping[str, str] = field(default_factory=dict)

    def find_event(self, event_name: str) -> tuple[str, type[BaseModel]] | None:
        """Return the registered spelling and model of an event, matched case-insensitively.

        Parameters
        ----------
        event_name : str
            The event name as a caller typed it.

        Returns
        -------
        tuple[str, type[BaseModel]] | None
            ``(registered_name, model)``, or None when the orchestrator accepts no such event.
        """
        wanted = event_name.lower()
        for name, model in self.events.items():
            if name.lower() == wanted:
                return name, model
        return None

    def route_for(self, event_name: str, instance_id: str) -> str | None:
        """Return the route that owns a registered event, for one instance, or None."""
        route = self.routes.get(event_name)
        return route.replace("{instanceId}", instance_id) if route else None

    @property
    def event_names(self) -> list[str]:
        """The accepted event names, sorted."""
        return sorted(self.events, key=str.lower)


_workflows: dict[str, WorkflowSpec] = {}


def register_workflow(
    name: str,
    input_model: type[BaseModel],
    events: Mapping[str, type[BaseModel]] | None = None,
    *,
    public: bool = False,
    routes: Mapping[str, str] | None = None,
) -> WorkflowSpec:
    """Register an orchestrator with the models of its input and events.

    Registering the same specification again is a no-op, so re-importing a module is safe.

    Parameters
    ----------
    name : str
        The orchestrator function name.
    input_model : type[BaseModel]
        The model of the orchestrator's input.
    events : Mapping[str, type[BaseModel]] | None
        Event name -> model of its payload; None when the orchestrator waits for no events.
    public : bool
        True to let ``POST /api/orchestrators/{name}`` start it and the generic instance
        routes manage its instances; internal workflows and sub-orchestrations stay False.
    routes : Mapping[str, str] | None
        Event name -> the route that raises it after its own checks (the stage that waits, who
        decides) and answers with the outcome. The generic events endpoint refuses those
        events, naming the route, so that nobody bypasses its checks. Operators' tools (the
        monitor) still raise them.

    Returns
    -------
    WorkflowSpec
        The registered specification.

    Raises
    ------
    ValueError
        If another workflow already uses the name (case-insensitively), or two event names
        differ only in case.
    """
    event_map = dict(events or {})
    route_map = dict(routes or {})
    if unknown := set(route_map) - set(event_map):
        raise ValueError(f"Workflow '{name}' routes events it does not register: {unknown}.")
    lowered = [event.lower() for event in event_map]
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"Workflow '{name}' has event names that differ only in case.")
    spec = WorkflowSpec(
        name=name,
        input_model=input_model,
        events=MappingProxyType(event_map),
        public=public,
        routes=MappingProxyType(route_map),
    )
    existing = _workflows.get(name.lower())
    if existing is not None:
        same = (
            existing.name == spec.name
            and existing.input_model is spec.input_model
            and dict(existing.events) == event_map
            and existing.public == public
            and dict(existing.routes) == route_map
        )
        if same:
            return existing
        raise ValueError(
            f"Workflow '{name}' is already registered (as '{existing.name}'); "
            "orchestrator names are case-insensitive and must be unique."
        )
    _workflows[name.lower()] = spec
    return spec


def get_workflow(name: str) -> WorkflowSpec | None:
    """Return the workflow registered under a name, matched case-insensitively.

    Parameters
    ----------
    name : str
        The orchestrator name as a caller typed it.

    Returns
    -------
    WorkflowSpec | None
        The specification, or None when no workflow has that name.
    """
    return _workflows.get(name.lower())


def get_public_workflow(name: str) -> WorkflowSpec | None:
    """Return the workflow under a name when it is registered public, else None.

    Parameters
    ----------
    name : str
        The orchestrator name as a caller typed it.

    Returns
    -------
    WorkflowSpec | None
        The specification of a public workflow, or None.
    """
    spec = get_workflow(name)
    return spec if spec is not None and spec.public else None


def registered_workflows() -> list[WorkflowSpec]:
    """Return every registered workflow, sorted by name.

    Returns
    -------
    list[WorkflowSpec]
        The registered specifications.
    """
    return sorted(_workflows.values(), key=lambda spec: spec.name.lower())
