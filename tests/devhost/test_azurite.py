"""Starting and stopping Azurite, and the errors that say what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from devhost import azurite as azurite_module
from devhost.azurite import (
    AzuriteError,
    AzuriteProcess,
    azurite_project,
    ports_listening,
    start_azurite,
)


def test_missing_azurite_says_to_run_npm_ci(tmp_path: Path) -> None:
    with pytest.raises(AzuriteError, match="npm ci") as error:
        start_azurite(tmp_path, tmp_path / "data")
    assert "node_modules/.bin/azurite" in str(error.value)


def test_an_installed_devhost_names_the_apps_folder_for_azurite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed, devhost has no checkout with node_modules: Azurite is the app's to install."""
    monkeypatch.setattr(azurite_module, "DEVHOST_PROJECT", tmp_path / "site-packages")
    app = tmp_path / "app"
    app.mkdir()

    assert azurite_project(app) == app
    with pytest.raises(AzuriteError, match=f"'npm install azurite' in {app}"):
        start_azurite(azurite_project(app), tmp_path / "data")


def test_missing_node_says_to_install_node(
    tmp_path: Path, project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AzuriteError, match=r"Node\.js is not on PATH.*Node\.js 18\+"):
        start_azurite(project_dir, tmp_path / "data")


@pytest.mark.azurite
def test_start_waits_for_the_ports_and_stop_frees_them(
    tmp_path: Path, project_dir: Path, free_ports: tuple[int, int, int]
) -> None:
    azurite = start_azurite(project_dir, tmp_path, free_ports)
    try:
        assert ports_listening("127.0.0.1", free_ports)
        assert f"TableEndpoint=http://127.0.0.1:{free_ports[2]}/devstoreaccount1;" in (
            azurite.connection_string
        )
    finally:
        azurite.stop()
    assert azurite.process.poll() is not None
    assert not ports_listening("127.0.0.1", free_ports)


@pytest.mark.azurite
def test_start_refuses_ports_in_use(
    tmp_path: Path, project_dir: Path, azurite: AzuriteProcess
) -> None:
    with pytest.raises(AzuriteError, match="already in use"):
        start_azurite(project_dir, tmp_path, azurite.ports)
