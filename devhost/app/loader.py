"""Loading a function app the way the Python worker indexes it (v2 programming model).

The worker imports ``function_app.py``, finds the ``FunctionRegister`` (``func.FunctionApp``,
``df.DFApp``...) in it and calls ``get_functions()``, which also validates names. We do the
same and classify each function by its trigger binding. Durable names (orchestrator, activity,
entity) are matched case-insensitively, as the extension does (protocol notes §1.1).
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func


class AppLoadError(Exception):
    """The app could not be imported or indexed; the message says why."""


@dataclass
class FunctionInfo:
    """One indexed function."""

    name: str
    kind: str  # "http", "orchestrator", "activity", "entity" or the trigger type
    durable_name: str  # name the durable APIs use (trigger override or function name)
    func: Callable[..., Any]
    trigger_param: str
    client_param: str | None = None
    route: str | None = None
    methods: list[str] = field(default_factory=list)
    auth_level: str = "function"
    bindings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)


@dataclass
class FunctionIndex:
    """Every function of the app, with lookups by durable name."""

    functions: list[FunctionInfo]
    http_auth_level: str = "function"

    def _by_kind(self, kind: str) -> dict[str, FunctionInfo]:
        return {f.durable_name.lower(): f for f in self.functions if f.kind == kind}

    def __post_init__(self) -> None:
        self.orchestrators = self._by_kind("orchestrator")
        self.activities = self._by_kind("activity")
        self.entities = self._by_kind("entity")
        self.http = [f for f in self.functions if f.kind == "http"]

    def orchestrator(self, name: str) -> FunctionInfo | None:
        return self.orchestrators.get(name.lower())

    def activity(self, name: str) -> FunctionInfo | None:
        return self.activities.get(name.lower())

    def entity(self, name: str) -> FunctionInfo | None:
        return self.entities.get(name.lower())


_TRIGGER_KINDS = {
    "httpTrigger": "http",
    "orchestrationTrigger": "orchestrator",
    "activityTrigger": "activity",
    "entityTrigger": "entity",
}
_DURABLE_NAME_KEYS = {
    "orchestrator": "orchestration",
    "activity": "activity",
    "entity": "entityName",
}


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _index_function(fn: Any) -> FunctionInfo:
    bindings = [
        {k: _enum_value(v) for k, v in b.get_dict_repr().items()} for b in fn.get_bindings()
    ]
    trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")), None)
    if trigger is None:
        raise AppLoadError(f"Function '{fn.get_function_name()}' has no trigger binding.")
    kind = _TRIGGER_KINDS.get(trigger["type"], trigger["type"])
    name = fn.get_function_name()
    durable_name = trigger.get(_DURABLE_NAME_KEYS.get(kind, ""), None) or name
    client = next((b for b in bindings if b.get("type") == "durableClient"), None)
    methods = [str(_enum_value(m)).upper() for m in trigger.get("methods") or []]
    return FunctionInfo(
        name=name,
        kind=kind,
        durable_name=durable_name,
        func=fn.get_user_function(),
        trigger_param=trigger["name"],
        client_param=client["name"] if client else None,
        route=trigger.get("route") if kind == "http" else None,
        methods=methods,
        auth_level=str(trigger.get("authLevel", "function")).lower(),
        bindings=bindings,
    )


def find_register(module: Any) -> Any:
    """The module's ``FunctionRegister`` instance, as the worker looks for it."""
    for value in vars(module).values():
        if isinstance(value, func.FunctionRegister):
            return value
    raise AppLoadError(
        f"{getattr(module, '__file__', module)} defines no FunctionApp: create one with "
        "'app = df.DFApp()' or 'app = func.FunctionApp()'."
    )


def index_app(app: Any) -> FunctionIndex:
    """Index an already-built app object (``DFApp``/``FunctionApp``)."""
    # azure-functions remembers indexed names on the app and refuses a second get_functions()
    # ("not a unique function name"); the worker indexes once per process, tests may not.
    if isinstance(getattr(app, "functions_bindings", None), dict):
        app.functions_bindings = {}
    try:
        functions = app.get_functions()
    except Exception as exc:  # the SDK raises ValueError for duplicate names and the like
        raise AppLoadError(f"Indexing failed: {exc}") from exc
    infos = [_index_function(f) for f in functions]
    seen: dict[tuple[str, str], str] = {}
    for info in infos:
        if info.kind in _DURABLE_NAME_KEYS:
            key = (info.kind, info.durable_name.lower())
            if key in seen:
                raise AppLoadError(
                    f"Two {info.kind} functions are named '{info.durable_name}' "
                    f"(names are case-insensitive): '{seen[key]}' and '{info.name}'."
                )
            seen[key] = info.name
    auth = str(_enum_value(getattr(app, "auth_level", "function"))).lower()
    return FunctionIndex(functions=infos, http_auth_level=auth)


def _app_frame(error: BaseException, app_dir: Path) -> tuple[str, int] | None:
    """The deepest traceback frame in the app's own files (not an installed package's)."""
    found: tuple[str, int] | None = None
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if not path.is_absolute() or "site-packages" in path.parts:
            continue
        if path.is_relative_to(app_dir) and frame.lineno is not None:
            found = (str(path.relative_to(app_dir)), frame.lineno)
    return found


def import_failure(error: Exception, script: Path, app_dir: Path) -> str:
    """One sentence naming what failed to import, the app's file and line, and what to do."""
    if isinstance(error, SyntaxError) and error.filename:
        path = Path(error.filename)
        shown = path.relative_to(app_dir) if path.is_relative_to(app_dir) else path
        return (
            f"{script.name} could not be imported: {error.msg} in {shown}, line {error.lineno}; "
            "fix the syntax and start again."
        )
    frame = _app_frame(error, app_dir)
    at = f" in {frame[0]}, line {frame[1]}" if frame else ""
    if isinstance(error, ModuleNotFoundError):
        return (
            f"{script.name} could not be imported: no module named {error.name!r}{at}; install "
            "the app's packages (pip install -r requirements.txt) or fix the import."
        )
    return f"{script.name} could not be imported: {type(error).__name__}: {error}{at}."


def load_app(app_dir: str | Path, module_name: str = "function_app") -> FunctionIndex:
    """Import ``<app_dir>/function_app.py`` and index it.

    Raises
    ------
    AppLoadError
        When the file is missing, does not import (the message names the app's file and line
        that failed), or defines no app.
    """
    app_dir = Path(app_dir).resolve()
    script = app_dir / f"{module_name}.py"
    if not script.is_file():
        raise AppLoadError(f"No {module_name}.py in {app_dir}.")
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    module = sys.modules.get(module_name)
    if module is None or Path(getattr(module, "__file__", "")).resolve() != script:
        spec = importlib.util.spec_from_file_location(module_name, script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise AppLoadError(import_failure(exc, script, app_dir)) from exc
    return index_app(find_register(module))
