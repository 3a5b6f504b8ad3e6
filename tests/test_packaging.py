"""What gets deployed: requirements.txt, host.json and .funcignore agree with the project."""

import json
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _requirement_lines() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_requirements_match_pyproject_dependencies():
    """Azure's remote build installs exactly the runtime pins of pyproject.toml."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())

    assert sorted(_requirement_lines()) == sorted(pyproject["project"]["dependencies"])


def test_requirements_are_pinned():
    """Every requirement is pinned to one version."""
    assert all("==" in line for line in _requirement_lines())


def test_host_json_settings():
    """host.json carries the bundle, route prefix and durable settings the app relies on."""
    host = json.loads((ROOT / "host.json").read_text())
    durable = host["extensions"]["durableTask"]

    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }
    assert host["extensions"]["http"]["routePrefix"] == "api"
    assert durable["hubName"].isalnum() and 3 <= len(durable["hubName"]) <= 45
    assert durable["maxConcurrentActivityFunctions"] > 0
    assert durable["maxConcurrentOrchestratorFunctions"] > 0
    assert durable["storageProvider"]["partitionCount"] == 4
    assert durable["overridableExistingInstanceStates"] == "NonRunningStates"
    assert host["logging"]["logLevel"]["default"] == "Information"
    assert host["functionTimeout"] == "00:10:00"


def test_local_settings_example():
    """The example settings run the app on Azurite with worker indexing."""
    settings = json.loads((ROOT / "local.settings.json.example").read_text())

    assert settings["IsEncrypted"] is False
    assert settings["Values"] == {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsFeatureFlags": "EnableWorkerIndexing",
    }


def test_funcignore_keeps_development_files_out():
    """Tests, the local host, benchmarks and Node modules are not deployed."""
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }

    assert {
        "tests",
        "devhost",
        "bench",
        "infra",
        "node_modules",
        ".venv",
        "local.settings.json",
    } <= (ignored)


def test_funcignore_keeps_the_app_in():
    """What the app needs at runtime is not ignored."""
    ignored = (ROOT / ".funcignore").read_text().split()

    for needed in (
        "function_app.py",
        "host.json",
        "requirements.txt",
        "blueprints",
        "models",
        "storage_settings.py",
    ):
        assert needed not in ignored
