"""Open endpoints: health, readiness, metrics, OpenAPI."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_healthz(anon: TestClient) -> None:
    r = anon.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_metrics_count_requests_by_route(client: TestClient) -> None:
    client.get("/v1/workspaces/default")
    client.get("/v1/workspaces/nope")
    text = client.get("/metrics").text
    assert 'modelyard_http_requests_total{method="GET",route="/v1/workspaces/{ws}",status="200"} 1.0' in text
    assert 'modelyard_http_requests_total{method="GET",route="/v1/workspaces/{ws}",status="404"} 1.0' in text
    assert 'modelyard_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/workspaces/{ws}"}' in text


def test_openapi_documents_routes_and_error_shape(anon: TestClient) -> None:
    spec = anon.get("/openapi.json").json()
    assert spec["info"]["title"] == "modelyard"
    paths = spec["paths"]
    for path in (
        "/v1/workspaces",
        "/v1/workspaces/{ws}",
        "/v1/workspaces/{ws}/members",
        "/v1/me",
        "/v1/users",
        "/v1/tokens",
        "/v1/workspaces/{ws}/events",
        "/healthz",
        "/readyz",
    ):
        assert path in paths, path
    assert paths["/v1/workspaces"]["post"]["operationId"].startswith("create_workspace")
    error_body = spec["components"]["schemas"]["ErrorBody"]
    assert set(error_body["required"]) == {"error_code", "error_msg"}
    assert "404" in paths["/v1/workspaces/{ws}"]["get"]["responses"]
    # Every operation documents each error status in the one error shape, as JSON.
    for path, operations in paths.items():
        for method, operation in operations.items():
            for code in ("400", "401", "403", "404", "409", "412", "413"):
                content = operation["responses"][code]["content"]
                assert content == {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}, (
                    method,
                    path,
                    code,
                )


def test_metrics_label_builtin_routes_and_bound_unknown_paths(anon: TestClient) -> None:
    anon.get("/openapi.json")
    anon.get("/no/such/path/123")
    text = anon.get("/metrics").text
    assert 'route="/openapi.json",status="200"' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "/no/such/path/123" not in text
