"""Route templates and the function route table (devhost/web/routes.py)."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.app.loader import index_app
from devhost.web.routes import (
    RouteTable,
    RouteTemplate,
    RouteTemplateError,
    function_route,
    function_route_table,
    split_path,
)
from devhost.web.server import function_urls


def match(template: str, path: str) -> dict[str, str] | None:
    return RouteTemplate(template).match(split_path(path))


def test_literal_segments_match_case_insensitively() -> None:
    assert match("api/Orders/list", "/API/orders/LIST") == {}
    assert match("api/orders/list", "/api/orders") is None
    assert match("api/orders", "/api/orders/list") is None


def test_parameters_capture_decoded_segments() -> None:
    assert match("api/items/{id}/parts/{part}", "/api/items/a%20b/parts/7") == {
        "id": "a b",
        "part": "7",
    }


def test_an_encoded_slash_stays_inside_its_segment() -> None:
    assert match("api/files/{name}", "/api/files/a%2Fb") == {"name": "a/b"}


def test_trailing_slash_is_ignored() -> None:
    assert match("api/items/{id}", "/api/items/5/") == {"id": "5"}


def test_optional_parameter_may_be_absent_and_is_then_left_out() -> None:
    assert match("api/orchestrators/{name}/{id?}", "/api/orchestrators/hello") == {"name": "hello"}
    assert match("api/orchestrators/{name}/{id?}", "/api/orchestrators/hello/x1") == {
        "name": "hello",
        "id": "x1",
    }


def test_default_value_fills_a_missing_segment() -> None:
    assert match("api/pages/{page=1}", "/api/pages") == {"page": "1"}
    assert match("api/pages/{page=1}", "/api/pages/4") == {"page": "4"}


def test_catch_all_takes_the_rest_of_the_path() -> None:
    assert match("api/static/{*path}", "/api/static/css/site.css") == {"path": "css/site.css"}
    assert match("api/static/{*path}", "/api/static") == {}
    assert match("api/static/{**path}", "/api/static/a/b") == {"path": "a/b"}


@pytest.mark.parametrize(
    ("template", "good", "bad"),
    [
        ("{v:int}", "-42", "4.2"),
        ("{v:int}", "2147483647", "2147483648"),
        ("{v:long}", "2147483648", "x"),
        ("{v:double}", "4.5e3", "4,5"),
        ("{v:bool}", "TRUE", "yes"),
        ("{v:guid}", "6f9619ff-8b86-d011-b42d-00cf4fc964ff", "not-a-guid"),
        ("{v:alpha}", "abcXYZ", "abc1"),
        ("{v:min(10)}", "10", "9"),
        ("{v:max(10)}", "10", "11"),
        ("{v:range(1,3)}", "2", "4"),
        ("{v:length(2)}", "ab", "abc"),
        ("{v:minlength(2)}", "ab", "a"),
        ("{v:maxlength(2)}", "ab", "abc"),
        ("{v:regex(^\\d{{3}}$)}", "123", "1234"),
        ("{v:int:min(1)}", "1", "0"),
    ],
)
def test_inline_constraints(template: str, good: str, bad: str) -> None:
    assert match(f"api/{template}", f"/api/{good}") == {"v": good}
    assert match(f"api/{template}", f"/api/{bad}") is None


def test_unknown_constraints_are_lenient() -> None:
    assert match("api/{v:somethingnew(3)}", "/api/x") == {"v": "x"}


def test_multi_part_segment_with_optional_tail() -> None:
    assert match("api/files/{name}.{ext?}", "/api/files/report.pdf") == {
        "name": "report",
        "ext": "pdf",
    }
    assert match("api/files/{name}.{ext?}", "/api/files/report") == {"name": "report"}


@pytest.mark.parametrize(
    "bad", ["api/{*rest}/more", "api/{}", "api/{x", "api/x}", "api//x", "api/{a}/{A}"]
)
def test_malformed_templates_are_rejected(bad: str) -> None:
    with pytest.raises(RouteTemplateError):
        RouteTemplate(bad)


def test_literal_beats_parameter_whatever_the_registration_order() -> None:
    table: RouteTable[str] = RouteTable()
    table.add("api/documents/{id}", [], "by-id")
    table.add("api/documents/{id:int}", [], "by-number")
    table.add("api/documents/search", [], "search")
    table.add("api/documents/{*rest}", [], "fallback")

    def target(path: str) -> str | None:
        found = table.resolve("GET", path)
        return found.target if found else None

    assert target("/api/documents/search") == "search"
    assert target("/api/documents/42") == "by-number"
    assert target("/api/documents/abc") == "by-id"
    assert target("/api/documents/a/b") == "fallback"


def test_methods_restrict_a_route_and_a_wrong_method_is_no_route() -> None:
    table: RouteTable[str] = RouteTable()
    table.add("api/items/{id}", ["GET"], "read")
    table.add("api/items/{id}", ["delete"], "remove")
    table.add("api/any", [], "any")

    read = table.resolve("get", "/api/items/1")
    assert read is not None and read.target == "read"
    remove = table.resolve("DELETE", "/api/items/1")
    assert remove is not None and remove.target == "remove"
    assert table.resolve("PUT", "/api/items/1") is None
    any_method = table.resolve("PATCH", "/api/any")
    assert any_method is not None and any_method.target == "any"


def _app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="orders/{id}", methods=["GET", "POST"])
    def get_order(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("order")

    @app.route()
    def ping(req: func.HttpRequest) -> str:
        return "pong"

    @app.orchestration_trigger(context_name="context")
    def my_orchestrator(context: df.DurableOrchestrationContext) -> str:
        return "done"

    @app.activity_trigger(input_name="name")
    def say_hello(name: str) -> str:
        return name

    return app


def test_function_without_route_uses_its_name_under_the_prefix() -> None:
    index = index_app(_app())
    by_name = {info.name: info for info in index.http}
    assert function_route(by_name["ping"], "api") == "api/ping"
    assert function_route(by_name["ping"], "") == "ping"
    assert function_route(by_name["get_order"], "/v1/") == "v1/orders/{id}"


def test_empty_route_prefix_serves_functions_at_the_root() -> None:
    table = function_route_table(index_app(_app()).http, route_prefix="")
    found = table.resolve("GET", "/orders/7")
    assert found is not None and found.target.name == "get_order"
    assert found.route_params == {"id": "7"}
    assert table.resolve("GET", "/api/orders/7") is None


def test_function_urls_lists_http_functions_with_urls_then_the_others() -> None:
    urls = function_urls(index_app(_app()), "http://localhost:7071/", "api")
    assert urls[:2] == [
        ("get_order", "[GET,POST]", "http://localhost:7071/api/orders/{id}"),
        (
            "ping",
            "[GET,POST,DELETE,HEAD,PATCH,PUT,OPTIONS,TRACE]",
            "http://localhost:7071/api/ping",
        ),
    ]
    assert sorted(urls[2:]) == [
        ("my_orchestrator", "orchestrationTrigger", None),
        ("say_hello", "activityTrigger", None),
    ]
