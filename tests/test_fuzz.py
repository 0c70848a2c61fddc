"""Schemathesis over the gateway's own OpenAPI document, against the real gateway process
with a valid key: no 5xx, and every answer matches the document (status, content type,
body). The number of examples per operation is small so that ``make test`` stays fast;
``FUZZ_EXAMPLES`` raises it for a longer run."""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
)

from tests import processes

# Not checked: "a schema-valid request is accepted". The API has rules the document cannot
# state (no NUL characters anywhere in metadata, its size and depth, 64-bit numbers,
# Idempotency-Key semantics), so some schema-valid requests are rightly 4xx.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


def fuzz(
    strategy: SearchStrategy[schemathesis.Case], url: str, api_key: str, excluded: list[Any]
) -> None:
    """Run one operation's cases; raises what schemathesis found."""

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same cases every run: a failure here is reproducible
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        headers = {"Authorization": f"Bearer {api_key}"}
        if not (case.headers or {}).get("Idempotency-Key"):
            headers["Idempotency-Key"] = os.urandom(8).hex()
        case.call_and_validate(base_url=url, headers=headers, excluded_checks=excluded)

    check()


def test_api_answers_match_the_document_and_are_never_5xx(
    gateway: processes.Gateway, api_key: str
) -> None:
    # One test looping over the operations: schemathesis' pytest plugin (lazy schemas from
    # fixtures) does not work with pytest 9, and the gateway only exists inside a fixture.
    schema = schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5
    failures: dict[str, str] = {}
    # Valid data: answers must match the document. Invalid data: never a 5xx, and answers
    # in the documented shapes; not checked on it: "refused" (a query string has only
    # strings: an "array" source arrives as repeated values, an "object" as its text, and
    # FastAPI rightly takes them) and content types (uvicorn itself refuses a request line
    # over llhttp's 80 KB, e.g. a 10,000-character q percent-encoded, in plain text).
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            excluded: list[Any] = [positive_data_acceptance]
            if mode is GenerationMode.NEGATIVE:
                excluded += [content_type_conformance, negative_data_rejection]
            try:
                fuzz(operation.as_strategy(generation_mode=mode), gateway.url, api_key, excluded)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no input, so nothing to make invalid
            except Exception as error:
                failures[f"{operation.label} [{mode.value}]"] = str(error)[:3000]
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def test_every_operation_has_examples(gateway: processes.Gateway) -> None:
    """Parameters and JSON bodies of every operation carry an example for clients and docs."""
    document = httpx.get(f"{gateway.url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    missing = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if not {"example", "examples"} & parameter.keys():
                    parameter_schema = parameter.get("schema", {})
                    if not {"example", "examples", "default"} & parameter_schema.keys():
                        missing.append(f"{method} {path} parameter {parameter['name']}")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                ref = body["schema"].get("$ref", "")
                target = schemas.get(ref.rsplit("/", 1)[-1], body["schema"])
                if not {"example", "examples"} & (body.keys() | target.keys()):
                    missing.append(f"{method} {path} body")
    assert not missing, missing


def test_every_api_operation_documents_the_error_shape(gateway: processes.Gateway) -> None:
    document = httpx.get(f"{gateway.url}/openapi.json").json()
    for path, item in document["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            for code in ("401", "422", "429", "503"):
                content = operation["responses"][code]["content"]["application/json"]
                assert content["schema"]["$ref"].endswith("/ErrorResponse"), (method, path, code)


def test_every_json_answer_has_an_example(gateway: processes.Gateway) -> None:
    document = httpx.get(f"{gateway.url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    missing = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for code, answer in operation["responses"].items():
                for media_type, content in answer.get("content", {}).items():
                    if "json" not in media_type:
                        continue
                    name = content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                    found = {"example", "examples"} & (
                        content.keys() | schemas.get(name, {}).keys()
                    )
                    if not found:
                        missing.append(f"{method} {path} {code}")
    assert not missing, missing
