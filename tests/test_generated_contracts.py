"""Files generated from the code stay in step with it (``make contracts``): the contracts'
enums of order states and actions are the orders transition table's, and docs/asyncapi.yaml
is the AsyncAPI document of the registered contracts."""
from __future__ import annotations

import yaml

from tools.contracts import generate


def test_the_committed_vocabulary_and_asyncapi_document_are_what_the_code_generates():
    assert generate.VOCABULARY.read_text() == generate.vocabulary_source(), "run `make contracts`"
    assert generate.ASYNCAPI.read_text() == generate.asyncapi_source(), "run `make contracts`"
    assert generate.main(["--check"]) == 0


def test_the_vocabulary_is_the_transition_table():
    from orders.domain.states import STATES, TERMINAL, TRANSITIONS
    from shared.contracts.vocabulary import TERMINAL_STATES, Action, OrderState

    assert [s.value for s in OrderState] == list(STATES)
    assert {a.value for a in Action} == {a for (_s, a) in TRANSITIONS}
    assert TERMINAL_STATES == TERMINAL


def test_the_asyncapi_document_lists_every_event_with_its_payload_schema():
    import shared.contracts  # noqa: F401
    from shared.events import registry

    doc = yaml.safe_load(generate.ASYNCAPI.read_text())
    assert doc["asyncapi"].startswith("3.")
    messages, schemas = doc["components"]["messages"], doc["components"]["schemas"]
    for type_, version, topic in registry.types():
        mid = f"{type_}.v{version}"
        assert doc["channels"][topic]["messages"][mid] == {"$ref": f"#/components/messages/{mid}"}
        envelope, body = messages[mid]["payload"]["allOf"]
        assert envelope == {"$ref": "#/components/schemas/Envelope"}
        assert body["properties"]["type"] == {"const": type_}
        model = registry.model_for(type_, version).__name__
        assert body["properties"]["data"] == {"$ref": f"#/components/schemas/{model}"}
        assert set(schemas[model]["properties"]) == set(registry.model_for(type_, version).__struct_fields__)
    # the typed vocabulary is in the schemas: a transition's action is one of the table's
    action = schemas["ServiceOrderTransitioned"]["properties"]["action"]
    assert action == {"$ref": "#/components/schemas/Action"} and "process.refund" in schemas["Action"]["enum"]
    assert list(schemas["Envelope"]["properties"]) == ["id", "type", "schema_version", "occurred_at", "producer",
                                                       "key", "correlation_id", "data"]
