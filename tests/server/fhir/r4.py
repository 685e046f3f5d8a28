"""The two checks every resource the FHIR API serves must pass: HL7's official R4 (4.0.1) JSON schema (vendored
from npm by web/vendor.py into tests/data/fhir-r4-schema) and the SMART on FHIR R4 models (required elements,
types, no unknown elements, the codes each element's value set allows)."""

from __future__ import annotations

import functools
import importlib
import json
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator

SCHEMA = Path(__file__).parents[2] / "data" / "fhir-r4-schema" / "fhir.schema.json"


@functools.cache
def _definitions() -> dict[str, Any]:
    """The schema's definitions. The package ships HL7's R4 schema as generated for 4.0.0, whose lists of FHIR
    versions stop there: 4.0.1 (R4's technical correction, what we serve) is added to those lists alone."""
    schema = json.loads(SCHEMA.read_text())
    assert schema["id"] == "http://hl7.org/fhir/json-schema/4.0", "the R4 schema"
    lists = [d["properties"]["fhirVersion"]["enum"] for d in schema["definitions"].values()
             if "enum" in d.get("properties", {}).get("fhirVersion", {})]
    assert lists and all(versions[-1] == "4.0.0" for versions in lists)
    for versions in lists:
        versions.append("4.0.1")
    return schema["definitions"]


@functools.cache
def schema_validator(resource_type: str) -> Draft6Validator:
    return Draft6Validator({"$ref": f"#/definitions/{resource_type}", "definitions": _definitions()})


def model(resource_type: str) -> type:
    module = importlib.import_module(f"fhirclient.models.{resource_type.lower()}")
    return getattr(module, resource_type)


def valid_r4(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, if the official R4 schema and the R4 model both take all of it (raises otherwise)."""
    resource_type = resource["resourceType"]
    assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", resource.get("id", "x")), "an id FHIR allows"
    errors = sorted(schema_validator(resource_type).iter_errors(resource), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message[:300]}" for e in errors)
    parsed = model(resource_type)(resource, strict=True)
    assert parsed.as_json() == resource, "every element survives the R4 model: nothing was dropped or retyped"
    for entry in resource.get("entry", []):
        valid_r4(entry["resource"])
    return resource
