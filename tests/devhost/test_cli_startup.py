"""``python -m devhost start``: every start-up mistake is one plain sentence and exit code 2.

Most cases run the command's ``main()`` in this process (fast); two run it as a process, as a
user would, to show that no traceback is printed unless ``--verbose`` asks for it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.azurite import AzuriteProcess
from devhost.cli import main
from devhost.storage_settings import DEVSTORE_ACCOUNT_KEY, development_storage_connection_string
from tests.conftest import PROJECT_DIR, _free_ports

VALID_APP = """\
import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def hello(context):
    return "hello"


@app.route(route="ping")
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")
"""
HOST_JSON = '{"version": "2.0", "extensions": {"durableTask": {"hubName": "Startup"}}}'


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path) -> Iterator[None]:
    """main() changes the environment, sys.path, logging and sys.modules: put them back."""
    environment = dict(os.environ)
    path = list(sys.path)
    function_app = sys.modules.get("function_app")
    levels = {
        name: logging.getLogger(name).level
        for name in ("azure", "azure.identity", "devhost.engine")
    }
    yield
    os.environ.clear()
    os.environ.update(environment)
    sys.path[:] = path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]
    if function_app is not None:
        sys.modules["function_app"] = function_app
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def make_app(folder: Path, files: dict[str, str] | None = None) -> Path:
    """A small valid app (or one whose files are replaced by ``files``)."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {"function_app.py": VALID_APP, "host.json": HOST_JSON, **(files or {})}
    for name, text in contents.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def start(capsys: pytest.CaptureFixture[str], app: Path, *options: str) -> tuple[int, str]:
    """Run ``start`` in this process; return its exit code and what it wrote to stderr."""
    port = str(_free_ports(1)[0])
    code = main(["start", "--app", str(app), "--port", port, *options])
    return code, capsys.readouterr().err


def assert_one_sentence(code: int, err: str, *fragments: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_a_port_in_use_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(tmp_path / "app")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["start", "--app", str(app), "--port", str(port)])

    assert_one_sentence(
        code, capsys.readouterr().err, f"Port {port} on 127.0.0.1 is already in use", "--port"
    )


def test_an_app_folder_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_one_sentence(
        *start(capsys, tmp_path / "nowhere"),
        f"The app folder {tmp_path / 'nowhere'} does not exist",
        "point --app at",
    )


def test_an_app_folder_without_function_app(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "local.settings.json").write_text('{"Values": {}}')

    assert_one_sentence(*start(capsys, folder), f"{folder} has no function_app.py", "--app")


def test_a_broken_function_app_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.environ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    app = make_app(
        tmp_path / "app", {"function_app.py": "import azure.functions\n\ndef broken(:\n"}
    )

    assert_one_sentence(
        *start(capsys, app),
        "function_app.py could not be imported",
        "in function_app.py, line 3",
    )


IMPORT_FAILURES = [
    (
        "a-missing-package",
        {
            "function_app.py": "import helpers\n" + VALID_APP,
            "helpers.py": '"""Helpers."""\nimport not_installed_anywhere_xyz\n',
        },
        [
            "no module named 'not_installed_anywhere_xyz' in helpers.py, line 2",
            "pip install -r requirements.txt",
        ],
    ),
    (
        "an-error-raised-while-importing",
        {
            "function_app.py": "import settings_reader\n" + VALID_APP,
            "settings_reader.py": 'import os\n\nLIMIT = int(os.environ["ORDER_LIMIT"])\n',
        },
        ["KeyError: 'ORDER_LIMIT' in settings_reader.py, line 3"],
    ),
]


@pytest.mark.parametrize(
    ("files", "fragments"),
    [case[1:] for case in IMPORT_FAILURES],
    ids=[case[0] for case in IMPORT_FAILURES],
)
def test_an_import_failure_names_the_apps_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, str], fragments: list[str]
) -> None:
    os.environ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"
    app = make_app(tmp_path / "app", files)

    assert_one_sentence(*start(capsys, app), *fragments)


def test_host_json_of_the_wrong_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(
        tmp_path / "app", {"host.json": '{"version": "2.0", "extensions": {"durableTask": []}}'}
    )
    os.environ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true"

    assert_one_sentence(
        *start(capsys, app),
        "host.json: extensions.durableTask must be a JSON object, not a list",
    )


def _azurite_on(ports: tuple[int, ...]) -> str:
    """The explicit connection string of an Azurite on these (blob, queue, table) ports."""
    blob, queue, table = ports
    return development_storage_connection_string("127.0.0.1", (blob, queue, table))


def test_node_missing_is_named_with_what_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(tmp_path / "app")
    os.environ["AzureWebJobsStorage"] = _azurite_on(_free_ports(3))
    empty = tmp_path / "bin"
    empty.mkdir()
    os.environ["PATH"] = str(empty)

    assert_one_sentence(*start(capsys, app), "Node.js is not on PATH", "./dev setup")


def test_azurite_failing_to_start_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(tmp_path / "app")
    blob, queue, table = _free_ports(3)
    os.environ["AzureWebJobsStorage"] = _azurite_on((blob, queue, table))
    with socket.socket() as squatter:  # holds the queue port without listening on it
        squatter.bind(("127.0.0.1", queue))
        result = start(capsys, app)

    assert_one_sentence(
        *result,
        "Azurite exited with code 1 while starting",
        f"EADDRINUSE: address already in use 127.0.0.1:{queue}",
        "its log is",
    )


def test_azurite_not_running_with_no_azurite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(tmp_path / "app")
    os.environ["AzureWebJobsStorage"] = _azurite_on(_free_ports(3))

    assert_one_sentence(
        *start(capsys, app, "--no-azurite"), "names Azurite on 127.0.0.1", "drop --no-azurite"
    )


def _account_at(port: int) -> str:
    """A connection string for an account named shop whose services are all at ``port``."""
    endpoints = "".join(
        f"{service}Endpoint=http://127.0.0.1:{port}/shop;" for service in ("Blob", "Queue", "Table")
    )
    key = f"AccountKey={DEVSTORE_ACCOUNT_KEY};"
    return f"DefaultEndpointsProtocol=http;AccountName=shop;{key}{endpoints}"


def test_a_storage_account_that_cannot_be_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(tmp_path / "app")
    (closed,) = _free_ports(1)
    os.environ["AzureWebJobsStorage"] = _account_at(closed)

    assert_one_sentence(
        *start(capsys, app),
        f"The storage account at http://127.0.0.1:{closed}/shop cannot be reached",
        "connection refused",
        "check AzureWebJobsStorage",
    )


def test_a_storage_account_that_never_answers_is_reported_within_seconds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The start-up check's own timeouts (the SDK's would wait minutes, retrying)."""
    app = make_app(tmp_path / "app")
    with socket.socket() as silent:  # accepts connections (the kernel's backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        os.environ["AzureWebJobsStorage"] = _account_at(port)
        started = time.monotonic()
        result = start(capsys, app)
        waited = time.monotonic() - started

    assert_one_sentence(*result, f"http://127.0.0.1:{port}/shop cannot be reached")
    assert waited < 60, f"the check waited {waited:.0f} s"


def test_a_storage_account_refusing_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], azurite: AzuriteProcess
) -> None:
    app = make_app(tmp_path / "app")
    wrong_key = "d3Jvbmcga2V5IGZvciB0aGUgZGV2ZWxvcG1lbnQgYWNjb3VudA=="
    os.environ["AzureWebJobsStorage"] = azurite.connection_string.replace(
        DEVSTORE_ACCOUNT_KEY, wrong_key
    )

    assert_one_sentence(
        *start(capsys, app),
        "refused the credentials of AzureWebJobsStorage",
        "check the account key",
    )


# -- as a process -------------------------------------------------------------------------------


def _run_process(app: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    return subprocess.run(
        [sys.executable, "-m", "devhost", "start", "--app", str(app), *options],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_mistake_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", {"function_app.py": "import azure.functions\nx = (\n"})

    result = _run_process(app)

    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: function_app.py could not be imported: '(' was never closed in "
        "function_app.py, line 2; fix the syntax and start again."
    ]


def test_verbose_adds_the_traceback(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app", {"function_app.py": "import azure.functions\nx = (\n"})

    result = _run_process(app, "--verbose")

    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: function_app.py could not")


# -- identity-based storage (a process: aiohttp reads the CA to trust when it is imported) ----


def _start_with_identity(
    app: Path, settings: dict[str, str], *, until: str | None = None
) -> tuple[int | None, str]:
    """Start the host with ``settings``; return its exit code and output, or (None, output)
    once ``until`` appears (the host is then stopped)."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("AzureWebJobsStorage")}
    command = [sys.executable, "-m", "devhost", "start", "--app", str(app), "--no-azurite"]
    port = str(_free_ports(1)[0])
    process = subprocess.Popen(
        [*command, "--port", port],
        cwd=PROJECT_DIR,
        env={**inherited, **settings},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if until is not None and until in line:
                return None, "".join(output)
        return process.wait(timeout=60), "".join(output)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def test_the_host_runs_on_identity_based_settings(tmp_path: Path, oauth_azurite: Any) -> None:
    app = make_app(tmp_path / "app")
    asked = len(oauth_azurite.issuer.requests)

    code, output = _start_with_identity(app, oauth_azurite.settings(), until="Serving.")

    assert code is None, output
    assert (
        "Storage: AzureWebJobsStorage (identity-based: account devstoreaccount1, managed "
        "identity, client ID 8d3f1c52-0f43-4c57-9b47-6a6c0c1a2b3c)"
    ) in output
    assert len(oauth_azurite.issuer.requests) > asked


def test_an_identity_the_account_refuses(tmp_path: Path, oauth_azurite: Any) -> None:
    app = make_app(tmp_path / "app")
    oauth_azurite.issuer.token_lifetime = -600
    try:
        code, output = _start_with_identity(app, oauth_azurite.settings())
    finally:
        oauth_azurite.issuer.token_lifetime = 3600

    assert_one_sentence(
        code or 0,
        output,
        "refused managed identity, client ID 8d3f1c52",
        "grant that identity the Storage Blob Data Owner, Storage Queue Data Contributor and "
        "Storage Table Data Contributor roles",
    )


def test_no_credential_for_identity_based_settings(tmp_path: Path, oauth_azurite: Any) -> None:
    """DefaultAzureCredential on a machine signed in nowhere (its managed-identity probe goes
    to a closed loopback port, see conftest)."""
    app = make_app(tmp_path / "app")
    settings = {
        k: v
        for k, v in oauth_azurite.settings(client_id=None).items()
        if k not in ("AzureWebJobsStorage__credential", "IDENTITY_ENDPOINT", "IDENTITY_HEADER")
    }

    code, output = _start_with_identity(app, settings)

    assert_one_sentence(
        code or 0,
        output,
        "No token for the storage account at https://127.0.0.1:",
        "could be had with DefaultAzureCredential (AzureWebJobsStorage)",
        "az login",
    )
