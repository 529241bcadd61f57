#!/usr/bin/env python3
"""Contract checks, run by tests/e2e/contract.test.mjs (and by hand: .venv/bin/python tools/check_contract.py).

1. openapi.yaml is a valid OpenAPI 3.1 document.
2. Every request and response example in it validates against its schema.
3. The routes of template.yaml (HttpApi events), CargoLambda.toml (the local router,
   OPTIONS aside) and openapi.yaml are the same set of (method, path), and the router
   sends each to the function template.yaml builds for it.
4. The error codes in openapi.yaml are exactly those of shared/src/errors.rs.

Prints one line per check and `N passed, M failed`; exits non-zero on any failure.
"""
import re
import sys
import tomllib
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfn import ROOT, load_template  # noqa: E402

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")


spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
template = load_template()
router = tomllib.loads((ROOT / "CargoLambda.toml").read_text())["watch"]["router"]

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

# 3. Route lists.
template_routes = {}
template_preflight = {}
for name, res in template["Resources"].items():
    if res.get("Type") != "AWS::Serverless::Function":
        continue
    for ev in (res["Properties"].get("Events") or {}).values():
        if ev.get("Type") == "HttpApi" and ev["Properties"]["Method"].upper() == "OPTIONS":
            template_preflight[ev["Properties"]["Path"]] = name
        elif ev.get("Type") == "HttpApi":
            template_routes[(ev["Properties"]["Method"].upper(), ev["Properties"]["Path"])] = name
router_routes = {}
for path, entries in router.items():
    for e in entries:
        if e["method"] != "OPTIONS":
            router_routes[(e["method"].upper(), path)] = e["function"]
openapi_routes = {(m.upper(), p) for p, item in spec["paths"].items() for m in item if m in ("get", "post", "patch", "put", "delete")}
check("template.yaml and CargoLambda.toml route the same (method, path) set",
      set(template_routes) == set(router_routes), f"{sorted(set(template_routes) ^ set(router_routes))}")
check("template.yaml and openapi.yaml describe the same (method, path) set",
      set(template_routes) == openapi_routes, f"{sorted(set(template_routes) ^ openapi_routes)}")
# Function names: the router's function is the crate under functions/ that the template's
# logical id builds (FooBarFunction <-> foo-bar).
def logical_to_crate(logical):
    return re.sub(r"(?<!^)([A-Z])", r"-\1", logical.removesuffix("Function")).lower()
mismatched = [(k, template_routes[k], router_routes.get(k)) for k in template_routes
              if router_routes.get(k) != logical_to_crate(template_routes[k])]
check("each route runs the same function locally and in the template", not mismatched, str(mismatched))
crates = {p.name for p in (ROOT / "functions").iterdir() if (p / "Cargo.toml").exists()}
built = {logical_to_crate(n) for n, r in template["Resources"].items() if r.get("Type") == "AWS::Serverless::Function"}
check("template.yaml has one function per crate under functions/", crates == built, f"{sorted(crates ^ built)}")
# OPTIONS (CORS preflight) is routed for every API path locally.
api_paths = {p for (_, p) in router_routes if p.startswith("/api/")}
preflight = {p for p, entries in router.items() if any(e["method"] == "OPTIONS" for e in entries)}
check("every API path answers CORS preflights locally", api_paths <= preflight, f"{sorted(api_paths - preflight)}")
local_preflight = {p: e["function"] for p, entries in router.items() for e in entries if e["method"] == "OPTIONS"}
deployed_preflight = {p: logical_to_crate(n) for p, n in template_preflight.items()}
check("template.yaml routes the same preflights to the same functions", local_preflight == deployed_preflight,
      f"{sorted(set(local_preflight.items()) ^ set(deployed_preflight.items()))}")

# 4. Error codes.
rust_codes = set(re.findall(r'=> "([a-z_]+)",', (ROOT / "shared/src/errors.rs").read_text().split("pub fn status")[0]))
spec_codes = set(spec["components"]["schemas"]["ErrorCode"]["enum"])
check("openapi ErrorCode enum equals shared/src/errors.rs", rust_codes == spec_codes, f"{sorted(rust_codes ^ spec_codes)}")

passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
