"""Which store the monitor reads: the one place a connection setting becomes a ``Store``.

Resolved as the host resolves ``AzureWebJobsStorage`` (``devhost.storage_settings``): a connection
string, or the identity-based settings (``AzureWebJobsStorage__accountName`` with a managed
identity or a developer's sign-in), so the monitor opens any hub the host could.
"""

from __future__ import annotations

from devhost.storage_settings import STORAGE_CONNECTION, resolve_storage
from devhost.store.base import Store

_SERVICES = ("blob", "queue", "table")


def open_hub_store(connection: str | None, task_hub: str) -> Store:
    """Return the store of ``task_hub`` in the account ``connection`` names.

    Parameters
    ----------
    connection : str | None
        A storage connection string (``UseDevelopmentStorage=true`` for Azurite); None reads
        ``AzureWebJobsStorage`` from the environment, either form.
    task_hub : str
        The task hub name.

    Returns
    -------
    Store
        The monitor never calls ``open`` on it (that would create the hub's tables and queues
        in an account it only came to look at); the caller closes it.

    Raises
    ------
    devhost.storage_settings.StorageSettingsError
        No usable connection (the message names the settings looked for).
    ValueError
        The task hub name is not valid.
    """
    from devhost.store.azure import AzureStore

    settings = None if connection is None else {STORAGE_CONNECTION: connection}
    storage = resolve_storage(settings, services=_SERVICES, where="--connection")
    return AzureStore(storage, task_hub)
