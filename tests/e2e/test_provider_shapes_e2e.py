"""Apps configured for the Durable Task Scheduler (and its siblings) run unchanged here.

The host.json and local.settings.json below have the shapes of Microsoft's Python samples for the
Durable Task Scheduler (written here, not copied): ``storageProvider`` of type ``azureManaged``
with ``connectionStringName``, the scheduler emulator's connection string, hub names given
plainly, as a ``%SETTING%`` left unset, or with characters Azure Storage refuses. Each app
starts with its own files, says what it does about the provider, and runs orchestrations,
sub-orchestrations and entities to completion.

``AzureWebJobsStorage`` in the files is ``UseDevelopmentStorage=true``, as in the samples; the
test sets it in the environment (which wins over the file, as with ``func start``) to the
session's private Azurite, so no test touches a developer's emulator on the default ports.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from e2e_client import request_json, wait_for

APP = Path(__file__).parent / "apps" / "scheduler_shaped"
SCHEDULER_SETTING = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
pytestmark = pytest.mark.azurite

SAMPLE_SETTINGS = {
    "IsEncrypted": False,
    "Values": {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        SCHEDULER_SETTING: "Endpoint=http://localhost:8080;TaskHub=default;Authentication=None",
    },
}


def _scheduler_host(hub: str | None, logging: dict[str, Any], **extra: Any) -> dict[str, Any]:
    provider = {"type": "azureManaged", "connectionStringName": SCHEDULER_SETTING, **extra}
    durable: dict[str, Any] = {"storageProvider": provider}
    if hub is not None:
        durable["hubName"] = hub
    return {"version": "2.0", "logging": logging, "extensions": {"durableTask": durable}}


QUIET_CORE = {"logLevel": {"DurableTask.Core": "Warning"}}
SAMPLING = {"applicationInsights": {"samplingSettings": {"isEnabled": True}}}
BUNDLE = {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}

# (id, host.json, local.settings.json, the hub the host should use, where it says it came from)
SHAPES = [
    (
        "plain-hub-name",
        {**_scheduler_host("default", QUIET_CORE), "extensionBundle": BUNDLE},
        SAMPLE_SETTINGS,
        "default",
        "host.json hubName",
    ),
    (
        "hub-name-setting-unset",
        _scheduler_host("%TASKHUB_NAME%", SAMPLING),
        SAMPLE_SETTINGS,
        "default",
        f"TaskHub= of {SCHEDULER_SETTING}",
    ),
    (
        "hub-name-azure-storage-refuses",
        _scheduler_host("TASKHUB_NAME", SAMPLING),
        SAMPLE_SETTINGS,
        "TASKHUBNAME",
        "host.json hubName; kept as TASKHUBNAME",
    ),
    (
        "work-item-filtering",
        _scheduler_host(
            None, {"logLevel": {"default": "Information"}}, workItemFilteringEnabled=True
        ),
        {
            **SAMPLE_SETTINGS,
            "Values": {
                **SAMPLE_SETTINGS["Values"],
                SCHEDULER_SETTING: "Endpoint=http://localhost:8080;TaskHub=filtered;"
                "Authentication=None",
            },
        },
        "filtered",
        f"TaskHub= of {SCHEDULER_SETTING}",
    ),
]


def _run_to_completion(base_url: str, name: str) -> Any:
    status, links = request_json("POST", f"{base_url}/api/start/{name}")
    assert status == 202, links
    return links["statusQueryGetUri"]


def _finished(url: str) -> Any:
    status = request_json("GET", url)[1]
    return status if status and status["runtimeStatus"] in ("Completed", "Failed") else None


@pytest.mark.parametrize(
    ("host_json", "settings", "hub", "hub_source"),
    [shape[1:] for shape in SHAPES],
    ids=[shape[0] for shape in SHAPES],
)
def test_a_scheduler_shaped_app_runs_unchanged(
    host_factory: Any,
    tmp_path: Path,
    host_json: dict[str, Any],
    settings: dict[str, Any],
    hub: str,
    hub_source: str,
) -> None:
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "host.json").write_text(json.dumps(host_json, indent=2))
    (app / "local.settings.json").write_text(json.dumps(settings, indent=2))

    host = host_factory(app, hub_from_app=True)
    urls = {
        name: _run_to_completion(host.base_url, name)
        for name in ("chaining", "fan_out_fan_in", "parent", "counting")
    }
    results = {
        name: wait_for(lambda url=url: _finished(url), 60, f"{name} to finish")
        for name, url in urls.items()
    }

    assert {name: status["runtimeStatus"] for name, status in results.items()} == dict.fromkeys(
        urls, "Completed"
    )
    greetings = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert results["chaining"]["output"] == greetings
    assert results["fan_out_fan_in"]["output"] == {"items": 3, "total": 18}
    assert results["parent"]["output"] == {"child": greetings}
    assert results["counting"]["output"] == 30
    banner = host.log_path.read_text()
    assert "host.json names the azureManaged durability provider" in banner
    assert "keeps the app's state in Azure Storage through AzureWebJobsStorage" in banner
    hub_line = next(line for line in banner.splitlines() if line.startswith("Task hub:"))
    assert hub_line.startswith(f"Task hub: {hub} (") and hub_source in hub_line
    assert f"taskHub={hub}" in urls["chaining"]
