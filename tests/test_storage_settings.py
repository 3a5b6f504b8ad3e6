"""storage_settings (the app's, deployed): it reaches the account the host would.

The host's rules and their error messages live in ``devhost.storage_settings`` (checked in
``tests/devhost/test_host_storage_settings.py``); the app only reads settings a host accepted. Here
every form the host accepts must lead the app's clients to the same endpoints with the same
credential, so the two readers cannot drift apart.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

import storage_settings as app
from devhost import storage_settings as host

KEYED = (
    "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=c2VjcmV0;"
    "EndpointSuffix=core.windows.net"
)
CLIENT_ID = "8d3f1c52-0f43-4c57-9b47-6a6c0c1a2b3c"

ACCEPTED: dict[str, dict[str, str]] = {
    "connection string": {"AzureWebJobsStorage": KEYED},
    "Azurite shorthand": {"AzureWebJobsStorage": "UseDevelopmentStorage=true"},
    "names in any case": {"azurewebjobsstorage__ACCOUNTNAME": "shop"},
    "account name, DefaultAzureCredential": {"AzureWebJobsStorage__accountName": "shop"},
    "user-assigned identity": {
        "AzureWebJobsStorage__accountName": "shop",
        "AzureWebJobsStorage__credential": "ManagedIdentity",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
    },
    "system-assigned identity": {
        "AzureWebJobsStorage__accountName": "shop",
        "AzureWebJobsStorage__credential": "managedidentity",
    },
    "service principal": {
        "AzureWebJobsStorage__accountName": "shop",
        "AzureWebJobsStorage__tenantId": "tenant-1",
        "AzureWebJobsStorage__clientId": CLIENT_ID,
        "AzureWebJobsStorage__clientSecret": "s3cret-value",
    },
    "service URIs win over the account": {
        "AzureWebJobsStorage__accountName": "shop",
        "AzureWebJobsStorage__tableServiceUri": "https://tables.example.net/",
        "AzureWebJobsStorage__serviceUri": "https://blobs.example.net",
    },
    "an empty connection string with identity settings": {
        "AzureWebJobsStorage": "",
        "AzureWebJobsStorage__blobServiceUri": "https://shop.blob.core.windows.net",
        "AzureWebJobsStorage__tableServiceUri": "https://shop.table.core.windows.net",
        "AzureWebJobsStorage__credential": "managedidentity",
    },
}


class _NoTokens:
    """A token credential nobody asks (building a client makes no request)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token should be asked for")


def _reach(connection: Any, module: Any) -> dict[str, Any]:
    """Where the clients of ``connection`` go, and as whom."""
    credential = None if connection.credential is None else _NoTokens()
    urls = {
        service: module.service_client(connection, service, kind, credential=credential).url
        for service, kind in (("blob", BlobServiceClient), ("table", TableServiceClient))
    }
    choice = connection.credential
    who = None if choice is None else (choice.kind, choice.client_id, choice.tenant_id)
    return {"setting": connection.setting, "urls": urls, "credential": who}


@pytest.mark.parametrize("settings", ACCEPTED.values(), ids=list(ACCEPTED))
def test_the_app_reaches_the_account_the_host_resolves(settings: dict[str, str]) -> None:
    resolved_by_host = host.resolve_storage(settings, services=("blob", "table"))
    resolved_by_app = app.resolve_storage(settings)

    assert _reach(resolved_by_app, app) == _reach(resolved_by_host, host)


def test_a_named_connection_is_found_with_and_without_the_prefix() -> None:
    for settings in ({"AzureWebJobsOrders__accountName": "shop"}, {"Orders": KEYED}):
        by_host = host.resolve_storage(settings, connection="Orders")
        by_app = app.resolve_storage(settings, connection="Orders")

        assert _reach(by_app, app) == _reach(by_host, host)


def test_no_setting_names_the_settings_looked_for() -> None:
    with pytest.raises(app.StorageSettingsError) as raised:
        app.resolve_storage({"OTHER": "x"})

    assert "AzureWebJobsStorage" in str(raised.value)
    assert "AzureWebJobsStorage__accountName" in str(raised.value)


def test_both_read_the_same_setting_names() -> None:
    assert app.setting_names() == host.setting_names()
