"""docs/contracts/ is what the code produces, event schemas only evolve compatibly, and the
AsyncAPI document covers every topic the platform uses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli import topics
from services.contracts import __main__ as generator
from services.contracts import catalog
from services.contracts.compat import breaking_changes
from tests.platform.manifests import ROOT

COMMAND = "python -m services.contracts"


@pytest.fixture(scope="module")
def rendered() -> dict[Path, str]:
    """What the generator writes for the code as it is now."""
    return generator.render()


@pytest.fixture(scope="module")
def asyncapi(rendered) -> dict[str, Any]:
    """The AsyncAPI document."""
    return yaml.safe_load(rendered[generator.ASYNCAPI])


def test_checked_in_contracts_are_what_the_code_generates(rendered):
    stale = generator.stale(rendered)
    assert not stale, (
        "docs/contracts/ is out of date with the code — run `python -m services.contracts`:\n"
        + "\n".join(f"  {p.relative_to(ROOT)}" for p in stale))


def test_event_schemas_only_change_compatibly():
    broken = generator.incompatible(generator.schemas())
    assert not broken, generator.report(broken)


def test_every_event_type_constant_has_a_model_and_a_schema(rendered):
    for service in catalog.event_services():
        module = catalog.events_module(service)
        assert catalog.unmapped_types(module) == [], f"{module.__name__}.EVENTS is incomplete"
        for type_, model in module.EVENTS.items():
            schema = json.loads(rendered[generator.SCHEMAS / f"{type_}.json"])
            assert set(schema["properties"]) == {
                f.serialization_alias or f.alias or n for n, f in model.model_fields.items()}


def test_asyncapi_describes_every_topic_the_platform_uses(asyncapi):
    assert asyncapi["asyncapi"] == "3.0.0"
    addresses = {c["address"].replace("{partner}", catalog.PARTNER_EXAMPLE)
                 for c in asyncapi["channels"].values()}
    assert set(topics()) <= addresses, f"undocumented topics: {set(topics()) - addresses}"
    for chan in asyncapi["channels"].values():
        assert chan["messages"], f"{chan['address']} documents no message"


def test_asyncapi_messages_carry_cloudevents_headers_and_the_household_key(asyncapi):
    messages = asyncapi["components"]["messages"]
    for type_ in catalog.event_types():
        msg = messages[type_]
        headers = msg["headers"]
        assert headers["properties"]["ce_type"]["const"] == type_
        assert {"ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time"} <= set(
            headers["required"])
        assert {"ce_subject", "ce_correlationid", "ce_causationid", "traceparent"} <= set(
            headers["properties"])
        assert "household id" in msg["bindings"]["kafka"]["key"]["description"]
        assert msg["payload"] == {"$ref": f"./schemas/{type_}.json"}


def test_dead_letter_channels_document_the_headers_the_consumer_writes(asyncapi):
    written = set(re.findall(r'\("(dlq_[a-z_]+)"', (ROOT / "shared" / "consumer.py").read_text()))
    assert written, "shared/consumer.py writes no dlq_* header any more?"
    dead = asyncapi["components"]["messages"]["deadLetter"]
    assert set(dead["headers"]["required"]) == written
    dlq = [c for c in asyncapi["channels"].values() if c["address"].endswith(".dlq")]
    bases = [c for c in asyncapi["channels"].values() if not c["address"].endswith(".dlq")]
    assert {c["address"] for c in dlq} == {c["address"] + ".dlq" for c in bases}


def test_consumer_groups_of_the_code_are_the_receive_operations(asyncapi):
    ops = asyncapi["operations"]
    receivers = {op["bindings"]["kafka"]["groupId"]["enum"][0]
                 for op in ops.values() if op["action"] == "receive"}
    assert {"eligibility.registry", "supervision.timeline", "bank-partner.{partner}"} <= receivers
    for op in ops.values():
        assert op["messages"], "an operation without messages"


def test_every_reference_in_the_asyncapi_document_resolves(asyncapi):
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    refs = list(walk(asyncapi))
    assert refs
    for ref in refs:
        if ref.startswith("#/"):
            node: Any = asyncapi
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        else:
            assert (generator.DOCS / ref).exists(), f"{ref} does not exist"


def test_openapi_documents_cover_each_service(rendered):
    for service in ("registry", "eligibility", "disbursement", "supervision"):
        doc = json.loads(rendered[generator.OPENAPI / f"{service}.json"])
        assert doc["openapi"].startswith("3.")
        assert {"/health", "/ready", "/v1/ops/dead-letters"} <= set(doc["paths"])


def _typed(schema: dict[str, Any]) -> bool:
    """A named model, a list of them, a union of them, or text (CSV, HTML, Prometheus)."""
    if "$ref" in schema or schema.get("type") == "string":
        return True
    if schema.get("type") == "array":
        return _typed(schema["items"])
    return bool(schema.get("oneOf")) and all(_typed(s) for s in schema["oneOf"])


def test_every_operation_documents_a_typed_answer_and_its_errors_as_problem_json(rendered):
    for service in ("registry", "eligibility", "disbursement", "supervision"):
        doc = json.loads(rendered[generator.OPENAPI / f"{service}.json"])
        assert "HTTPValidationError" not in doc["components"]["schemas"]
        for path, item in doc["paths"].items():
            for method, op in item.items():
                where = f"{service} {method.upper()} {path}"
                answers = op["responses"]
                assert "422" in answers, f"{where}: no 422"
                for status, answer in answers.items():
                    content = answer.get("content", {})
                    if status.startswith("3"):  # a redirect: no body, where to in Location
                        assert "Location" in answer.get("headers", {}), f"{where}: {status}"
                    elif status.startswith("2") or (path, status) == ("/ready", "503"):
                        assert content, f"{where}: {status} without a body type"
                        for media, body in content.items():
                            assert _typed(body.get("schema", {})), (
                                f"{where}: {status} {media} untyped")
                    else:
                        assert {"application/problem+json", "text/html"} & set(content), (
                            f"{where}: {status} is neither problem+json nor a page")


def test_if_match_is_required_where_the_registry_requires_it(rendered):
    doc = json.loads(rendered[generator.OPENAPI / "registry.json"])
    guarded = [("patch", "/v1/households/{household_id}"),
               ("post", "/v1/households/{household_id}/members"),
               ("patch", "/v1/households/{household_id}/members/{member_id}"),
               ("delete", "/v1/households/{household_id}/members/{member_id}")]
    for method, path in guarded:
        op = doc["paths"][path][method]
        header = next(p for p in op["parameters"] if p["name"].lower() == "if-match")
        assert header["required"] is True, f"{method} {path}"
        assert {"412", "428"} <= set(op["responses"]), f"{method} {path}"


# --- the compatibility checker itself, on small schemas ---------------------------------------

BASE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "household_id": {"type": "string"},
        "amount_vnd": {"type": "integer"},
        "status": {"type": "string", "enum": ["accepted", "settled"]},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "member": {"$ref": "#/$defs/Member"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["household_id", "amount_vnd", "status", "member"],
    "$defs": {"Member": {"type": "object", "properties": {"name": {"type": "string"},
                                                          "born": {"type": "string",
                                                                   "format": "date"}},
                         "required": ["name"]}},
}


def changed(edit) -> list[str]:
    """Breaking changes of BASE after `edit` on a deep copy."""
    new = json.loads(json.dumps(BASE))
    edit(new)
    return breaking_changes(BASE, new)


def test_checker_accepts_the_same_schema_and_a_new_optional_property():
    assert breaking_changes(BASE, BASE) == []
    assert changed(lambda s: s["properties"].update(channel={"type": "string"})) == []
    assert changed(lambda s: s["$defs"]["Member"]["properties"].update(
        ethnicity={"anyOf": [{"type": "string"}, {"type": "null"}]})) == []


def test_checker_accepts_a_new_enum_value_and_new_descriptions():
    assert changed(lambda s: s["properties"]["status"]["enum"].append("failed")) == []
    assert changed(lambda s: s["properties"]["amount_vnd"].update(description="in đồng")) == []


def test_checker_rejects_a_removed_property():
    assert changed(lambda s: s["properties"].pop("amount_vnd")) == ["amount_vnd: removed"]
    assert changed(lambda s: s["$defs"]["Member"]["properties"].pop("born")) == [
        "member.born: removed"]


def test_checker_rejects_a_type_change():
    assert changed(lambda s: s["properties"].update(amount_vnd={"type": "string"})) == [
        "amount_vnd: type changed from integer to string"]
    assert changed(lambda s: s["properties"].update(
        amount_vnd={"anyOf": [{"type": "integer"}, {"type": "null"}]})) == [
        "amount_vnd: type changed from integer to integer|null"]
    assert changed(lambda s: s["$defs"]["Member"]["properties"]["born"].update(
        format="date-time")) == ["member.born: format changed from ['date'] to ['date-time']"]
    assert changed(lambda s: s["properties"]["tags"].update(items={"type": "integer"})) == [
        "tags[]: type changed from string to integer"]


def test_checker_rejects_a_new_required_property_and_required_changes():
    def add_required(s):
        s["properties"]["programme_code"] = {"type": "string"}
        s["required"].append("programme_code")

    assert changed(add_required) == ["programme_code: new required property"]
    assert changed(lambda s: s["required"].append("note")) == ["note: became required"]
    assert changed(lambda s: s["required"].remove("amount_vnd")) == [
        "amount_vnd: no longer required"]


def test_checker_rejects_removed_enum_values():
    assert changed(lambda s: s["properties"]["status"].update(enum=["accepted"])) == [
        "status: enum value(s) removed: settled"]


def test_generator_writes_checks_and_refuses_an_incompatible_schema(tmp_path, monkeypatch):
    docs = tmp_path / "contracts"
    for name, value in {"ROOT": tmp_path, "DOCS": docs, "SCHEMAS": docs / "schemas",
                        "OPENAPI": docs / "openapi",
                        "ASYNCAPI": docs / "asyncapi.yaml"}.items():
        monkeypatch.setattr(generator, name, value)
    assert generator.main(["--check"]) == 1, "an empty folder is stale"
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0

    some_type = next(iter(catalog.event_types()))
    published = docs / "schemas" / f"{some_type}.json"
    schema = json.loads(published.read_text())
    schema["properties"]["published_field"] = {"type": "string"}  # the code no longer has it
    published.write_text(json.dumps(schema))
    assert generator.main(["--check"]) == 1
    assert generator.main([]) == 1, "an incompatible change must not be written silently"
    assert "published_field" in published.read_text(), "the published schema was kept"
    assert generator.main(["--accept-breaking"]) == 0
    assert generator.main(["--check"]) == 0
