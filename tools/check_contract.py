#!/usr/bin/env python3
"""Contract checks, run by tests/e2e/contract.test.mjs (and by hand: .venv/bin/python tools/check_contract.py).

1. openapi.yaml is a valid OpenAPI 3.1 document.
2. Every request and response example in it validates against its schema.
(Routes and error codes against the Rust tables: testkit/tests/tables.rs, in cargo test.)

Prints one line per check and `N passed, M failed`; exits non-zero on any failure.
"""
import sys
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfn import ROOT  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")


spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())


# 1. The spec itself.
try:
    validate(spec)
    check("openapi.yaml is valid OpenAPI 3.1", True)
except Exception as e:  # noqa: BLE001 - report any validator failure
    check("openapi.yaml is valid OpenAPI 3.1", False, str(e).splitlines()[0])

# 2. Examples against their schemas ($refs resolved within the document).
registry = Registry().with_resource("urn:openapi", Resource(contents=spec, specification=DRAFT202012))


def deref(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        path = obj["$ref"].removeprefix("#/").split("/")
        obj = spec
        for p in path:
            obj = obj[p]
    return obj


def schema_validator(schema):
    wrapped = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": "urn:openapi#/components/schemas/_probe"}
    spec.setdefault("components", {}).setdefault("schemas", {})["_probe"] = schema
    reg = Registry().with_resource("urn:openapi", Resource(contents=spec, specification=DRAFT202012))
    return Draft202012Validator(wrapped, registry=reg)


def fix_refs(schema):
    """Point local refs at the registered document."""
    if isinstance(schema, dict):
        return {k: (v.replace("#/", "urn:openapi#/", 1) if k == "$ref" else fix_refs(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [fix_refs(x) for x in schema]
    return schema


examples = 0
for path, item in spec["paths"].items():
    for method, op in item.items():
        bodies = []
        if "requestBody" in op:
            bodies.append(("request", deref(op["requestBody"])))
        for status, resp in op.get("responses", {}).items():
            bodies.append((status, deref(resp)))
        for where, body in bodies:
            for media, content in (body.get("content") or {}).items():
                schema = content.get("schema")
                for ex_name, ex in (content.get("examples") or {}).items():
                    if schema is None:
                        continue
                    examples += 1
                    v = schema_validator(fix_refs(schema))
                    errors = [e.message for e in v.iter_errors(deref(ex)["value"])]
                    check(f"example {method.upper()} {path} {where} {ex_name}", not errors, "; ".join(errors[:2]))
spec["components"]["schemas"].pop("_probe", None)
check("openapi.yaml has examples to check", examples >= 15, f"only {examples}")

# 3./4. Route lists and error codes: testkit/tests/tables.rs compares Route::ALL and
# ErrorCode::ALL (the Rust tables) with template.yaml, CargoLambda.toml and openapi.yaml.

passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
