"""The settings the code reads, infra/main.bicep sets and docs/deploy.md lists are the same.

The code's settings are found in the deployed Python files (everything .funcignore keeps): the
``*_SETTING`` constants that name them, the names passed as text to ``os.environ`` or
``os.getenv``, and the storage connection's settings ``storage_settings`` reads. The template
is read with a real Bicep parser (pycep-parser), not with patterns.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

from storage_settings import CredentialChoice, resolve_storage, setting_names

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "main.bicep"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"

# Settings the template sets or the docs list that the deploying team owns but no code of this
# branch reads yet, each with the reason. An entry that the code reads fails the test: remove it.
PENDING: dict[str, str] = {}


def _deployed_python_files() -> list[Path]:
    ignored = [
        line.strip().rstrip("/")
        for line in (ROOT / ".funcignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    files = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in ignored):
            continue
        files.append(path)
    return files


def _environment_reads(tree: ast.AST) -> set[str]:
    """Names given as text to os.environ.get / os.environ[...] / os.getenv."""
    found: set[str] = set()
    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            target = ast.unparse(node.func)
            if target in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in (
            "os.environ",
            "environ",
        ):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            found.add(key.value)
    return found


def _setting_constants(tree: ast.Module) -> set[str]:
    """Values of module-level ``*_SETTING = "..."`` constants."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            for target in targets:
                if (
                    isinstance(target, ast.Name)
                    and target.id.endswith("_SETTING")
                    and isinstance(value, ast.Constant)
                    and isinstance(value.value, str)
                ):
                    found.add(value.value)
    return found


@cache
def settings_the_code_reads() -> frozenset[str]:
    found = set(setting_names())
    for path in _deployed_python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        found |= _environment_reads(tree) | _setting_constants(tree)
    return frozenset(found)


@cache
def template() -> dict[str, Any]:
    return BicepParser().parse(file_path=TEMPLATE)


def template_app_settings() -> dict[str, Any]:
    (settings,) = [
        resource["config"]["properties"]
        for resource in template()["resources"].values()
        if resource["type"] == "Microsoft.Web/sites/config"
        and resource["config"]["name"] == "appsettings"
    ]
    return dict(settings)


@cache
def documented() -> dict[str, dict[str, str]]:
    """The rows of the settings table in docs/deploy.md, by setting name."""
    text = DEPLOY_DOC.read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if header is None:
            header = cells
            continue
        name = re.fullmatch(r"`([A-Za-z0-9_]+)`", cells[0])
        assert name, f"the first cell of each row names one setting: {cells[0]!r}"
        rows[name.group(1)] = dict(zip(header, cells, strict=True))
    assert header == ["Setting", "Set by `infra/main.bicep`", "Read by", "Purpose"]
    return rows


def _read_by_platform(name: str) -> bool:
    return documented()[name]["Read by"] == "platform"


def test_the_scan_finds_the_settings_the_code_is_known_to_read() -> None:
    """The scan itself works: settings read through constants and through storage_settings."""
    assert {
        "WORKFLOW_STORAGE_PREFIX",
        "PURCHASE_ORDER_APPROVAL_THRESHOLD",
        "AzureWebJobsStorage",
        "AzureWebJobsStorage__accountName",
    } <= settings_the_code_reads()
    deployed = [path.relative_to(ROOT).parts[0] for path in _deployed_python_files()]
    assert "function_app.py" in deployed and "storage_settings.py" in deployed
    assert not {"devhost", "tests", "bench", ".venv"} & set(deployed)


def test_every_setting_the_code_reads_is_documented() -> None:
    missing = settings_the_code_reads() - documented().keys()

    assert not missing, f"docs/deploy.md does not list {sorted(missing)}"


def _nothing_reads(names: Iterable[str]) -> set[str]:
    """Of ``names``, those read neither by the code nor by the platform (nor pending)."""
    return {
        name
        for name in names
        if name not in settings_the_code_reads()
        and not _read_by_platform(name)
        and name not in PENDING
    }


def test_every_documented_setting_is_read_by_the_code_or_the_platform() -> None:
    unread = _nothing_reads(documented())

    assert not unread, f"docs/deploy.md lists settings nothing reads: {sorted(unread)}"


def test_pending_settings_are_not_read_yet() -> None:
    """Once the code reads a pending setting, its allowance must go."""
    stale = set(PENDING) & settings_the_code_reads()

    assert not stale, f"remove {sorted(stale)} from PENDING: the code reads them now"


def test_the_template_sets_exactly_the_settings_the_docs_say_it_does() -> None:
    said = {
        name
        for name, row in documented().items()
        if row["Set by `infra/main.bicep`"].startswith("yes")
    }

    assert set(template_app_settings()) == said


def test_no_setting_in_the_template_is_ignored() -> None:
    ignored = _nothing_reads(template_app_settings())

    assert not ignored, f"infra/main.bicep sets settings nothing reads: {sorted(ignored)}"


def test_the_templates_storage_settings_are_identity_based_and_resolve() -> None:
    """What the template sets is what the app accepts: an account and a managed identity."""
    settings = template_app_settings()
    concrete = {
        name: value if isinstance(value, str) else "placeholder"
        for name, value in settings.items()
        if name.startswith("AzureWebJobsStorage")
    }
    concrete["AzureWebJobsStorage__accountName"] = "stexample123"

    connection = resolve_storage(concrete, services=("blob", "queue", "table"))

    assert "AzureWebJobsStorage" not in settings
    assert connection.credential == CredentialChoice("managedidentity", client_id="placeholder")
    assert settings["WORKFLOW_AUTH"] == "easyauth"


def test_the_template_holds_no_storage_key() -> None:
    resources = template()["resources"]
    (storage,) = [r for r in resources.values() if r["type"] == "Microsoft.Storage/storageAccounts"]
    text = TEMPLATE.read_text()

    assert storage["config"]["properties"]["allowSharedKeyAccess"] is False
    assert "listKeys" not in text and "AccountKey" not in text
    assert "SharedAccessSignature" not in text and "listAccountSas" not in text


# Built-in role IDs (learn.microsoft.com, "Azure built-in roles"): a second source, so a
# mistyped GUID in the template fails here.
BUILT_IN_ROLES = {
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}


def _granted(assignment: dict[str, Any]) -> tuple[str, str, str]:
    """(role variable, scope, principal expression) of a roleAssignment."""
    role = assignment["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
    operands = role["operator"]["operands"]
    assert operands["operand_1"] == "roles"
    return operands["operand_2"], assignment["scope"], repr(assignment["properties"]["principalId"])


def test_the_identity_has_the_roles_the_host_the_extension_and_the_app_need() -> None:
    resources = template()["resources"].values()
    granted = {
        _granted(r["config"])
        for r in resources
        if r["type"] == "Microsoft.Authorization/roleAssignments"
    }

    assert template()["variables"]["roles"]["value"] == BUILT_IN_ROLES
    assert {(role, scope) for role, scope, _ in granted} == {
        ("storageBlobDataOwner", "storage"),
        ("storageQueueDataContributor", "storage"),
        ("storageTableDataContributor", "storage"),
        ("monitoringMetricsPublisher", "insights"),
    }
    assert all(
        "'identity'" in principal and "principalId" in principal for *_, principal in granted
    )


def test_app_service_authentication_signs_people_in_and_lets_key_callers_through() -> None:
    """As docs/security.md asks: the platform identifies people, the app answers 401 on the
    routes that act for one, and machine callers with keys are not turned away."""
    (auth,) = [
        r["config"]["properties"]
        for r in template()["resources"].values()
        if r["type"] == "Microsoft.Web/sites/config" and r["config"]["name"] == "authsettingsV2"
    ]
    entra = auth["identityProviders"]["azureActiveDirectory"]

    assert auth["platform"]["enabled"] is True
    assert entra["enabled"] is True and entra["registration"]["clientId"] == "authClientId"
    assert template()["parameters"]["requireSignIn"]["default"] is False
    assert auth["globalValidation"]["requireAuthentication"] == "requireSignIn"
