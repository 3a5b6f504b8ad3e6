"""The app's own storage reached both ways the Functions host accepts, against real storage.

Identity-based: Azurite with ``--oauth basic`` over HTTPS, the settings of a Function App with a
user-assigned managed identity (service URIs, ``__credential``, ``__clientId``; no account key
anywhere), and azure-identity's own ``ManagedIdentityCredential`` fetching tokens from an
App Service-style endpoint. Connection string: the session's Azurite with its key.
"""

from __future__ import annotations

import os
import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError

from blueprints import app_storage as storage
from devhost.storage_settings import DEVSTORE_ACCOUNT_KEY
from storage_settings import StorageSettingsError
from tests.conftest import StoragePath

pytestmark = pytest.mark.azurite


def _round_trip() -> dict[str, str]:
    table = storage.table("Probe")
    key = uuid.uuid4().hex
    table.upsert_entity({"PartitionKey": "p", "RowKey": key, "Value": "kept"})
    container = storage.blob_container("probe")
    container.upload_blob(f"{key}.txt", b"kept", overwrite=True)
    return {
        "table": table.get_entity("p", key)["Value"],
        "blob": container.download_blob(f"{key}.txt").readall().decode(),
    }


@pytest.mark.parametrize("storage_path", ["identity"], indirect=True)
def test_identity_based_settings_reach_storage_with_a_token_and_no_key(
    app_storage: str, storage_path: StoragePath
) -> None:
    assert storage_path.oauth is not None
    issuer = storage_path.oauth.issuer
    asked = len(issuer.requests)

    assert _round_trip() == {"table": "kept", "blob": "kept"}

    settings = {k: v for k, v in os.environ.items() if k.startswith("AzureWebJobsStorage")}
    assert os.environ["AzureWebJobsStorage"] == ""
    assert all(DEVSTORE_ACCOUNT_KEY not in value for value in settings.values())
    tokens = issuer.requests[asked:]
    assert tokens, "the app asked for no token"
    assert {t["resource"] for t in tokens} == {"https://storage.azure.com"}
    assert {t["client_id"] for t in tokens} == {settings["AzureWebJobsStorage__clientId"]}, (
        "the user-assigned identity's client ID was not used"
    )


@pytest.mark.parametrize("storage_path", ["identity"], indirect=True)
def test_storage_refuses_an_expired_token(app_storage: str, storage_path: StoragePath) -> None:
    """The identity path really authenticates with the token: Azurite refuses a stale one."""
    assert storage_path.oauth is not None
    issuer = storage_path.oauth.issuer
    issuer.token_lifetime = -600
    try:
        with pytest.raises(ClientAuthenticationError):
            storage.table("Probe")
    finally:
        issuer.token_lifetime = 3600


def test_the_connection_string_path_still_works(
    app_storage: str, storage_path: StoragePath
) -> None:
    assert storage_path.name == "connection-string"
    assert DEVSTORE_ACCOUNT_KEY in os.environ["AzureWebJobsStorage"]

    assert _round_trip() == {"table": "kept", "blob": "kept"}


def test_a_missing_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AzureWebJobsStorage"):
            monkeypatch.delenv(name)
    storage.reset_clients()

    with pytest.raises(StorageSettingsError, match="No storage connection: AzureWebJobsStorage"):
        storage.table("Probe")
