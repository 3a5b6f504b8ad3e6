"""The ``context`` argument a function may declare, as the Python worker builds it."""

from __future__ import annotations

import threading
from typing import Any

import azure.functions as func


class _TraceContext(func._abc.TraceContext):
    def __init__(self, trace_parent: str, trace_state: str) -> None:
        self._parent, self._state = trace_parent, trace_state

    @property
    def trace_state(self) -> str:
        return self._state

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class InvocationContext(func.Context):
    """The ``context`` argument a function may declare (``func.Context``)."""

    _thread_local = threading.local()

    def __init__(self, function_name: str, invocation_id: str, trace_parent: str = "") -> None:
        self._function_name = function_name
        self._invocation_id = invocation_id
        self._trace = _TraceContext(trace_parent, "")

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self) -> Any:
        return self._trace

    @property
    def retry_context(self) -> Any:
        return None
