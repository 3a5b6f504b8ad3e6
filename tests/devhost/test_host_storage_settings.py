"""devhost.storage_settings: the storage connection from the settings the Functions host reads.

No request is made here: resolving settings builds no client and no credential.
"""

from __future__ import annotations

from typing import Any

import pytest

from devhost.storage_settings import (
    DEVELOPMENT_STORAGE,
    CredentialChoice,
    StorageSettingsError,
    resolve_storage,
    service_client,
    setting_names,
)

KEYED = (
    "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=c2VjcmV0;"
    "EndpointSuffix=core.windows.net"
)
CLIENT_ID = "8d3f1c52-0f43-4c57-9b47-6a6c0c1a2b3c"
ALL = ("blob", "queue", "table")


def resolve(settings: dict[str, str], **options: Any) -> Any:
    return resolve_storage(settings, where="test settings", **options)


# -- the forms the host accepts ---------------------------------------------------------------


def test_a_connection_string() -> None:
    connection = resolve({"AzureWebJobsStorage": KEYED})

    assert connection.connection_string == KEYED
    assert connection.credential is None and connection.account_name == "shop"


def test_development_storage_is_expanded_for_the_sdks() -> None:
    connection = resolve({"AzureWebJobsStorage": "usedevelopmentstorage=true;"})

    assert connection.development and connection.connection_string == DEVELOPMENT_STORAGE


def test_setting_names_ignore_case_as_the_hosts_configuration_does() -> None:
    connection = resolve({"azurewebjobsstorage__ACCOUNTNAME": "shop"}, services=ALL)

    assert connection.setting == "AzureWebJobsStorage"
    assert connection.service_uri("queue") == "https://shop.queue.core.windows.net"


def test_an_account_name_gives_each_service_its_uri_and_default_credential() -> None:
    connection = resolve({"AzureWebJobsStorage__accountName": "shop"}, services=ALL)

    assert dict(connection.service_uris) == {
        "blob": "https://shop.blob.core.windows.net",
        "queue": "https://shop.queue.core.windows.net",
        "table": "https://shop.table.core.windows.net",
    }
    assert connection.credential == CredentialChoice("default")
    assert connection.connection_string is None


def test_a_service_uri_wins_over_the_account_name() -> None:
    connection = resolve(
        {
            "AzureWebJobsStorage__accountName": "shop",
            "AzureWebJobsStorage__tableServiceUri": "https://tables.example.net/",
        },
        services=ALL,
    )

    assert connection.service_uri("table") == "https://tables.example.net"
    assert connection.service_uri("blob") == "https://shop.blob.core.windows.net"


def test_service_uri_stands_for_the_blob_service() -> None:
    connection = resolve(
        {
            "AzureWebJobsStorage__serviceUri": "https://shop.blob.core.windows.net",
            "AzureWebJobsStorage__tableServiceUri": "https://shop.table.core.windows.net",
        }
    )

    assert connection.service_uri("blob") == "https://shop.blob.core.windows.net"


def test_a_user_assigned_managed_identity() -> None:
    connection = resolve(
        {
            "AzureWebJobsStorage__accountName": "shop",
            "AzureWebJobsStorage__credential": "ManagedIdentity",
            "AzureWebJobsStorage__clientId": CLIENT_ID,
        }
    )

    assert connection.credential == CredentialChoice("managedidentity", client_id=CLIENT_ID)
    assert f"managed identity, client ID {CLIENT_ID}" in connection.describe()


def test_a_system_assigned_managed_identity() -> None:
    connection = resolve(
        {
            "AzureWebJobsStorage__accountName": "shop",
            "AzureWebJobsStorage__credential": "managedidentity",
        }
    )

    assert connection.credential == CredentialChoice("managedidentity")


def test_a_service_principal_secret_is_kept_out_of_descriptions() -> None:
    connection = resolve(
        {
            "AzureWebJobsStorage__accountName": "shop",
            "AzureWebJobsStorage__tenantId": "tenant-1",
            "AzureWebJobsStorage__clientId": CLIENT_ID,
            "AzureWebJobsStorage__clientSecret": "s3cret-value",
        }
    )

    assert connection.credential is not None and connection.credential.kind == "clientsecret"
    assert "s3cret-value" not in connection.describe() + repr(connection)


def test_a_named_connection_is_found_with_and_without_the_prefix() -> None:
    prefixed = resolve({"AzureWebJobsOrders__accountName": "shop"}, connection="Orders")
    plain = resolve({"Orders": KEYED}, connection="Orders")

    assert prefixed.setting == "AzureWebJobsOrders" and plain.setting == "Orders"


class _NoTokens:
    """A token credential nobody asks (building a client makes no request)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AssertionError("no token should be asked for")


def test_service_client_builds_from_either_form() -> None:
    from azure.data.tables import TableServiceClient

    keyed = service_client(resolve({"AzureWebJobsStorage": KEYED}), "table", TableServiceClient)
    identity = resolve({"AzureWebJobsStorage__accountName": "shop"})
    by_token = service_client(identity, "table", TableServiceClient, credential=_NoTokens())

    assert keyed.url.startswith("https://shop.table.core.windows.net")
    assert by_token.url.startswith("https://shop.table.core.windows.net")


def test_setting_names_lists_both_forms() -> None:
    names = setting_names()

    assert names[0] == "AzureWebJobsStorage"
    assert {"AzureWebJobsStorage__accountName", "AzureWebJobsStorage__clientId"} <= set(names)


# -- mistakes ----------------------------------------------------------------------------------

# (id, settings, services, fragments of the message)
MISTAKES: list[tuple[str, dict[str, str], tuple[str, ...], list[str]]] = [
    (
        "nothing-set",
        {},
        ("blob", "table"),
        [
            "AzureWebJobsStorage (a connection string) and AzureWebJobsStorage__accountName "
            "(identity-based) are not set (test settings)"
        ],
    ),
    (
        "connection-string-and-identity",
        {"AzureWebJobsStorage": KEYED, "AzureWebJobsStorage__accountName": "shop"},
        ("blob", "table"),
        [
            "AzureWebJobsStorage holds a connection string",
            "AzureWebJobsStorage__accountName is set too",
            "Keep one",
        ],
    ),
    (
        "a-service-missing",
        {"AzureWebJobsStorage__blobServiceUri": "https://shop.blob.core.windows.net"},
        ("blob", "table"),
        ["AzureWebJobsStorage__accountName is not set", "AzureWebJobsStorage__tableServiceUri"],
    ),
    (
        "queue-missing-for-the-host",
        {
            "AzureWebJobsStorage__blobServiceUri": "https://shop.blob.core.windows.net",
            "AzureWebJobsStorage__tableServiceUri": "https://shop.table.core.windows.net",
        },
        ALL,
        ["neither is AzureWebJobsStorage__queueServiceUri"],
    ),
    (
        "plain-http-uri",
        {
            "AzureWebJobsStorage__tableServiceUri": "http://shop.table.core.windows.net",
            "AzureWebJobsStorage__accountName": "shop",
        },
        ("table",),
        [
            "AzureWebJobsStorage__tableServiceUri",
            "not an https:// service URI",
            "tokens are only sent over https",
        ],
    ),
    (
        "uri-not-a-uri",
        {
            "AzureWebJobsStorage__tableServiceUri": "shop.table",
            "AzureWebJobsStorage__accountName": "shop",
        },
        ("table",),
        ["AzureWebJobsStorage__tableServiceUri", "not an https:// service URI"],
    ),
    (
        "account-name-malformed",
        {"AzureWebJobsStorage__accountName": "My_Shop"},
        ("table",),
        ["AzureWebJobsStorage__accountName", "'My_Shop'", "3 to 24 lowercase letters and digits"],
    ),
    (
        "credential-unknown",
        {
            "AzureWebJobsStorage__accountName": "shop",
            "AzureWebJobsStorage__credential": "managed-identity",
        },
        ("table",),
        ["AzureWebJobsStorage__credential", "'managed-identity'", "'managedidentity'"],
    ),
    (
        "client-id-alone",
        {"AzureWebJobsStorage__accountName": "shop", "AzureWebJobsStorage__clientId": CLIENT_ID},
        ("table",),
        [
            "AzureWebJobsStorage__clientId is set",
            "without AzureWebJobsStorage__credential=managedidentity",
        ],
    ),
    (
        "managed-identity-with-a-secret",
        {
            "AzureWebJobsStorage__accountName": "shop",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientSecret": "x",
        },
        ("table",),
        ["AzureWebJobsStorage__clientSecret is set", "ignores it"],
    ),
    (
        "service-principal-incomplete",
        {
            "AzureWebJobsStorage__accountName": "shop",
            "AzureWebJobsStorage__clientId": CLIENT_ID,
            "AzureWebJobsStorage__clientSecret": "x",
        },
        ("table",),
        ["AzureWebJobsStorage__tenantId is not set"],
    ),
    (
        "resource-id-not-read",
        {
            "AzureWebJobsStorage__accountName": "shop",
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__managedIdentityResourceId": "/subscriptions/x",
        },
        ("table",),
        ["AzureWebJobsStorage__managedIdentityResourceId", "does not read it", "__clientId"],
    ),
    (
        "misspelled-key",
        {"AzureWebJobsStorage__acountName": "shop"},
        ("table",),
        [
            "AzureWebJobsStorage__acountName",
            "not a setting the Functions host reads",
            "__accountName",
        ],
    ),
    (
        "connection-string-malformed",
        {"AzureWebJobsStorage": "shop"},
        ("table",),
        ["AzureWebJobsStorage (test settings) is not a storage connection string"],
    ),
]


@pytest.mark.parametrize(
    ("settings", "services", "fragments"),
    [case[1:] for case in MISTAKES],
    ids=[case[0] for case in MISTAKES],
)
def test_each_mistake_names_the_settings_looked_for(
    settings: dict[str, str], services: tuple[str, ...], fragments: list[str]
) -> None:
    with pytest.raises(StorageSettingsError) as caught:
        resolve(settings, services=services)

    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)
    assert "c2VjcmV0" not in str(caught.value)  # never the account key
