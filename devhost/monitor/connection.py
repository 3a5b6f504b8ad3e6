"""Which store the monitor reads: the one place a connection setting becomes a ``Store``.

Kept to one small function so that other ways to reach an account (identity-based settings)
change only here.
"""

from __future__ import annotations

from devhost.store.base import Store


def open_hub_store(connection: str, task_hub: str) -> Store:
    """Return the store of ``task_hub`` in the account named by ``connection``.

    Parameters
    ----------
    connection : str
        A storage connection string (``UseDevelopmentStorage=true`` for Azurite).
    task_hub : str
        The task hub name.

    Returns
    -------
    Store
        The monitor never calls ``open`` on it (that would create the hub's tables and queues
        in an account it only came to look at); the caller closes it.
    """
    from devhost.store.azure import AzureStore

    return AzureStore(connection, task_hub)
