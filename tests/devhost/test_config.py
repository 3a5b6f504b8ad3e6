"""The local host's settings: durability providers, task hub names, and one message per mistake.

Each configuration mistake gets a message naming the setting (or host.json path) that is
missing or malformed and where it was looked for; the table below is that contract.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.config import ConfigError, load_config

DTS_SETTING = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
DTS_LOCAL = "Endpoint=http://localhost:8080;TaskHub=default;Authentication=None"
AZURITE = "UseDevelopmentStorage=true"


@pytest.fixture(autouse=True)
def clean_environment() -> Iterator[None]:
    """load_config exports Values to the environment: start without storage settings, restore."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.lower().startswith("azurewebjobs") or name in (DTS_SETTING, "TASKHUB_NAME"):
            del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)


def write_app(
    folder: Path,
    host: Any = None,
    values: dict[str, Any] | None = None,
    *,
    settings: Any = None,
) -> Path:
    """An app folder with the given host.json and local.settings.json (raw text if str)."""
    folder.mkdir(parents=True, exist_ok=True)
    if host is not None:
        text = host if isinstance(host, str) else json.dumps(host)
        (folder / "host.json").write_text(text)
    if settings is None and values is not None:
        settings = {"IsEncrypted": False, "Values": values}
    if settings is not None:
        text = settings if isinstance(settings, str) else json.dumps(settings)
        (folder / "local.settings.json").write_text(text)
    return folder


def durable(**settings: Any) -> dict[str, Any]:
    return {"version": "2.0", "extensions": {"durableTask": settings}}


def scheduler(hub: Any = "default", **provider: Any) -> dict[str, Any]:
    """host.json in the shape of the Durable Task Scheduler samples."""
    block = {
        "type": "azureManaged",
        "connectionStringName": DTS_SETTING,
        **provider,
    }
    settings: dict[str, Any] = {"storageProvider": block}
    if hub is not None:
        settings["hubName"] = hub
    return durable(**settings)


SAMPLE_VALUES = {
    "AzureWebJobsStorage": AZURITE,
    "FUNCTIONS_WORKER_RUNTIME": "python",
    DTS_SETTING: DTS_LOCAL,
}


# -- the durability provider ---------------------------------------------------------------------


def test_the_scheduler_samples_settings_run_on_azure_storage(tmp_path: Path) -> None:
    config = load_config(write_app(tmp_path, scheduler(), SAMPLE_VALUES))

    assert config.provider.type == "azureManaged"
    assert config.storage.setting == "AzureWebJobsStorage"
    assert config.storage.development
    assert (config.task_hub, config.task_hub_source) == ("default", "host.json hubName")
    notice = config.provider_notice()
    assert notice is not None
    assert "azureManaged" in notice and DTS_SETTING in notice
    assert "Azure Storage through AzureWebJobsStorage instead (Azurite)" in notice


def test_without_a_hub_name_the_scheduler_connection_names_the_hub(tmp_path: Path) -> None:
    values = {**SAMPLE_VALUES, DTS_SETTING: "Endpoint=http://localhost:8080;TaskHub=orders;"}
    config = load_config(write_app(tmp_path, scheduler(hub=None), values))

    assert config.task_hub == "orders"
    assert config.task_hub_source == f"TaskHub= of {DTS_SETTING}"


def test_an_unset_hub_name_setting_falls_back_to_the_scheduler_connection(tmp_path: Path) -> None:
    """The shape with hubName %TASKHUB_NAME% and TASKHUB_NAME left unset."""
    config = load_config(write_app(tmp_path, scheduler(hub="%TASKHUB_NAME%"), SAMPLE_VALUES))

    assert config.task_hub == "default"
    assert "TaskHub= of" in config.task_hub_source and "%TASKHUB_NAME%" in config.task_hub_source


def test_a_hub_name_setting_is_resolved(tmp_path: Path) -> None:
    values = {**SAMPLE_VALUES, "TASKHUB_NAME": "Bookings"}
    config = load_config(write_app(tmp_path, scheduler(hub="%TASKHUB_NAME%"), values))

    assert config.task_hub == "Bookings"


def test_a_scheduler_hub_name_azure_storage_refuses_is_kept_in_letters_and_digits(
    tmp_path: Path,
) -> None:
    config = load_config(write_app(tmp_path, scheduler(hub="TASKHUB_NAME"), SAMPLE_VALUES))

    assert config.task_hub == "TASKHUBNAME"
    assert "kept as TASKHUBNAME" in config.task_hub_source


@pytest.mark.parametrize(
    ("provider", "setting"),
    [
        ({"type": "mssql", "connectionStringName": "SQLDB_Connection"}, "SQLDB_Connection"),
        ({"type": "MSSQL"}, "SQLDB_Connection"),
        ({"type": "netherite", "StorageConnectionName": "AzureWebJobsStorage"}, None),
    ],
    ids=["mssql", "mssql-default-connection", "netherite"],
)
def test_other_providers_are_named_and_run_on_azure_storage(
    tmp_path: Path, provider: dict[str, Any], setting: str | None
) -> None:
    host = durable(hubName="Shop", storageProvider=provider)
    config = load_config(write_app(tmp_path, host, {"AzureWebJobsStorage": AZURITE}))

    notice = config.provider_notice()
    assert notice is not None and config.task_hub == "Shop"
    assert f"names the {provider['type'].lower()}" in notice.lower()
    if setting:
        assert f"connection {setting} (not set; not needed here)" in notice
    else:
        assert "connection EventHubsConnection (not set; not needed here)" in notice


def test_azure_storage_has_no_notice_and_honours_its_settings(tmp_path: Path) -> None:
    host = durable(
        hubName="Shop",
        maxConcurrentActivityFunctions="7",
        maxConcurrentOrchestratorFunctions=3,
        overridableExistingInstanceStates="anystate",
        storageProvider={"type": "AzureStorage", "partitionCount": 2},
    )
    host["extensions"]["http"] = {"routePrefix": "/v1/"}
    config = load_config(write_app(tmp_path, host, {"AzureWebJobsStorage": AZURITE}))

    assert config.provider_notice() is None
    assert config.partition_count == 2
    assert config.engine.max_concurrent_activities == 7
    assert config.engine.max_concurrent_orchestrators == 3
    assert config.engine.overridable_states == "AnyState"
    assert config.route_prefix == "v1"


def test_the_environment_wins_over_local_settings(tmp_path: Path) -> None:
    os.environ["AzureWebJobsStorage"] = (
        "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=a2V5;"
    )
    config = load_config(write_app(tmp_path, durable(hubName="Shop"), SAMPLE_VALUES))

    assert config.storage.account_name == "prod"
    assert not config.storage.development


def test_a_named_storage_connection_is_found_with_the_hosts_prefix(tmp_path: Path) -> None:
    host = durable(hubName="Shop", storageProvider={"connectionName": "Orders"})
    config = load_config(write_app(tmp_path, host, {"AzureWebJobsOrders": AZURITE}))

    assert config.storage.setting == "AzureWebJobsOrders"


def test_values_written_as_numbers_are_read_as_text(tmp_path: Path) -> None:
    values = {"AzureWebJobsStorage": AZURITE, "BATCH_SIZE": 25, "FEATURE": True}
    config = load_config(write_app(tmp_path, durable(hubName="Shop"), values))

    assert config.values["BATCH_SIZE"] == "25" and config.values["FEATURE"] == "true"


# -- one message per mistake ------------------------------------------------------------------

VALID_VALUES = {"AzureWebJobsStorage": AZURITE}

# (id, host.json, local.settings.json (a Values dict, or raw file content), task hub override,
#  the fragments the message must hold)
MISTAKES: list[tuple[str, Any, Any, str | None, list[str]]] = [
    ("host-json-not-json", "{ nope", VALID_VALUES, None, ["host.json is not valid JSON"]),
    (
        "host-json-a-list",
        "[]",
        VALID_VALUES,
        None,
        ["host.json must hold a JSON object, not a list"],
    ),
    (
        "host-json-without-version",
        {"extensions": {}},
        VALID_VALUES,
        None,
        ['host.json: version must be "2.0"', "not null"],
    ),
    (
        "extensions-not-an-object",
        {"version": "2.0", "extensions": "durableTask"},
        VALID_VALUES,
        None,
        ['host.json: extensions must be a JSON object, not "durableTask"'],
    ),
    (
        "durable-task-a-list",
        {"version": "2.0", "extensions": {"durableTask": []}},
        VALID_VALUES,
        None,
        ["extensions.durableTask must be a JSON object, not a list"],
    ),
    (
        "hub-name-a-number",
        durable(hubName=42),
        VALID_VALUES,
        None,
        ["extensions.durableTask.hubName must be a string, not 42"],
    ),
    (
        "hub-name-azure-storage-refuses",
        durable(hubName="my-hub"),
        VALID_VALUES,
        None,
        ["'my-hub' (from host.json hubName) is not valid for Azure Storage", "letters and digits"],
    ),
    (
        "hub-name-setting-not-set",
        durable(hubName="%TASKHUB_NAME%"),
        VALID_VALUES,
        None,
        [
            "hubName is '%TASKHUB_NAME%'",
            "the setting TASKHUB_NAME is not set",
            "local.settings.json",
        ],
    ),
    (
        "task-hub-option-invalid",
        durable(hubName="Shop"),
        VALID_VALUES,
        "2fast",
        ["'2fast' (from --task-hub) is not valid for Azure Storage"],
    ),
    (
        "activity-concurrency-not-a-number",
        durable(maxConcurrentActivityFunctions="ten"),
        VALID_VALUES,
        None,
        ['maxConcurrentActivityFunctions must be a whole number above 0, not "ten"'],
    ),
    (
        "orchestrator-concurrency-zero",
        durable(maxConcurrentOrchestratorFunctions=0),
        VALID_VALUES,
        None,
        ["maxConcurrentOrchestratorFunctions must be a whole number above 0, not 0"],
    ),
    (
        "partition-count-too-high",
        durable(storageProvider={"partitionCount": 17}),
        VALID_VALUES,
        None,
        ["storageProvider.partitionCount must be a whole number from 1 to 16, not 17"],
    ),
    (
        "provider-not-an-object",
        durable(storageProvider="azureManaged"),
        VALID_VALUES,
        None,
        ['extensions.durableTask.storageProvider must be a JSON object, not "azureManaged"'],
    ),
    (
        "provider-type-unknown",
        durable(storageProvider={"type": "cosmos"}),
        VALID_VALUES,
        None,
        ['storageProvider.type is "cosmos"', "AzureStorage, azureManaged, mssql and netherite"],
    ),
    (
        "overridable-states-unknown",
        durable(overridableExistingInstanceStates="Never"),
        VALID_VALUES,
        None,
        ['overridableExistingInstanceStates is "Never"', "NonRunningStates or AnyState"],
    ),
    (
        "route-prefix-not-a-string",
        {"version": "2.0", "extensions": {"http": {"routePrefix": 5}}},
        VALID_VALUES,
        None,
        ["extensions.http.routePrefix must be a string, not 5"],
    ),
    (
        "local-settings-not-json",
        durable(),
        '{"Values": {',
        None,
        ["local.settings.json is not valid JSON"],
    ),
    (
        "local-settings-encrypted",
        durable(),
        '{"IsEncrypted": true, "Values": {}}',
        None,
        ["IsEncrypted: true", "func settings decrypt"],
    ),
    (
        "values-a-list",
        durable(),
        '{"Values": ["AzureWebJobsStorage"]}',
        None,
        ["local.settings.json: Values must be a JSON object, not a list"],
    ),
    (
        "value-an-object",
        durable(),
        {"AzureWebJobsStorage": {"accountName": "x"}},
        None,
        ["local.settings.json: Values.AzureWebJobsStorage must be a string, not an object"],
    ),
    (
        "storage-not-set",
        durable(),
        {},
        None,
        [
            "No storage connection: AzureWebJobsStorage (a connection string) and "
            "AzureWebJobsStorage__accountName (identity-based) are not set",
            "local.settings.json Values",
        ],
    ),
    (
        "storage-not-set-for-a-scheduler-app",
        scheduler(),
        {DTS_SETTING: DTS_LOCAL},
        None,
        [
            "No storage connection: AzureWebJobsStorage (a connection string)",
            "names the azureManaged provider",
            "through AzureWebJobsStorage",
        ],
    ),
    (
        "named-storage-connection-not-set",
        durable(storageProvider={"connectionName": "Orders"}),
        VALID_VALUES,
        None,
        ["AzureWebJobsOrders or Orders (a connection string) and AzureWebJobsOrders__accountName"],
    ),
    (
        "storage-not-a-connection-string",
        durable(),
        {"AzureWebJobsStorage": "my storage account"},
        None,
        ["AzureWebJobsStorage (looked in", "is not a storage connection string"],
    ),
    (
        "storage-holds-the-scheduler-string",
        scheduler(),
        {"AzureWebJobsStorage": DTS_LOCAL, DTS_SETTING: DTS_LOCAL},
        None,
        ["AzureWebJobsStorage", "holds a Durable Task Scheduler connection string"],
    ),
    (
        "storage-development-false",
        durable(),
        {"AzureWebJobsStorage": "UseDevelopmentStorage=false"},
        None,
        ["AzureWebJobsStorage", "UseDevelopmentStorage=false"],
    ),
    (
        "storage-without-a-key",
        durable(),
        {"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=shop"},
        None,
        ["AzureWebJobsStorage", "names no credential", "AccountKey"],
    ),
    (
        "scheduler-connection-malformed",
        scheduler(hub=None),
        {**VALID_VALUES, DTS_SETTING: "Endpoint http://localhost:8080"},
        None,
        [f"{DTS_SETTING} (looked in", "part 1 has no '='"],
    ),
]


@pytest.mark.parametrize(
    ("host", "settings", "task_hub", "fragments"),
    [case[1:] for case in MISTAKES],
    ids=[case[0] for case in MISTAKES],
)
def test_each_mistake_names_the_setting_and_where(
    tmp_path: Path, host: Any, settings: Any, task_hub: str | None, fragments: list[str]
) -> None:
    if isinstance(settings, dict):
        app = write_app(tmp_path / "app", host, settings)
    else:
        app = write_app(tmp_path / "app", host, settings=settings)

    with pytest.raises(ConfigError) as caught:
        load_config(app, task_hub=task_hub)

    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message


def test_secrets_in_a_malformed_connection_string_are_not_repeated(tmp_path: Path) -> None:
    values = {"AzureWebJobsStorage": "AccountName=shop;AccountKey=c2VjcmV0;oops"}
    app = write_app(tmp_path, durable(), values)

    with pytest.raises(ConfigError) as caught:
        load_config(app)

    assert "c2VjcmV0" not in str(caught.value)


def test_a_missing_app_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nowhere")
