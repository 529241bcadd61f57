#!/usr/bin/env python3
"""OpenAPI-driven fuzzing of a running stack with Schemathesis (run by tests/e2e/fuzz.test.mjs).

    E2E_API_URL=http://127.0.0.1:3000 [E2E_ACCESS_TOKEN=<access token>] \
        .venv/bin/python tools/fuzz.py [--max-examples N] [--seed N] [schemathesis run options...]

Runs `schemathesis run openapi.yaml` (the version pinned in tools/requirements.txt) against
E2E_API_URL: the examples, coverage and fuzzing phases (no stateful links), positive and
negative data, with these checks on every response:

- not_a_server_error; status_code_conformance, content_type_conformance,
  response_headers_conformance, response_schema_conformance: the answer is documented;
- positive_data_acceptance: a request the schema accepts is not refused (statuses per
  operation below: the 4xx a schema cannot rule out, e.g. an allow list or a rate limit);
- negative_data_rejection: a request the schema rejects is refused with a 4xx;
- schema_valid_request_not_refused_as_invalid (defined here, loaded as a Schemathesis hook):
  a request the schema accepts never gets a request-shape error code (`validation_error`,
  `unknown_attribute`, `malformed_json`, ...), whatever its status — the precise form of
  positive_data_acceptance for an API whose business-rule refusals share 400/422 with them.

E2E_ACCESS_TOKEN, when set, is sent as `Authorization: Bearer ...` to the operations that
declare the `bearer` security scheme. Operations that end the token's session
(logoutEverywhere; changePassword when it succeeds) are best run apart, with their own
token: pass `--include-operation-id` / `--exclude-operation-id` through.

Reproducible: the Hypothesis seed is fixed (--seed, default SEED below), there is one worker,
no example database or cache is kept between runs, and generation does not feed on responses
(no values taken from them, no error-message feedback), so the same schema and seed send the
same requests. Bounded: at most --max-examples (default MAX_EXAMPLES) generated cases per
operation in the fuzzing phase, plus the examples and the coverage phase's fixed set; the
three runs of fuzz.test.mjs make about 1,700 requests. Prints Schemathesis's report, then one
summary line (`fuzz: passed: ...` or `fuzz: FAILED ...`); exits non-zero on any failure or
error.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi.yaml"
SEED = 20261128
MAX_EXAMPLES = 50
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
]
CUSTOM_CHECK = "schema_valid_request_not_refused_as_invalid"

# Statuses a schema-valid request may get, beyond 2xx: 401 (credentials, links, tokens that
# do not exist), 409 (password_already_set), 429 (rate limits), and per operation the 400/422
# codes of rules no schema can state.
POSITIVE_STATUSES = ["2xx", "401", "403", "409", "429"]
POSITIVE_EXTRA = {
    "register": ["422"],  # redirect_url_not_allowed (the hub's allow list)
    "requestMagicLink": ["422"],  # the same
    "patchMe": ["422"],  # current_password_incorrect; tos_accepted_at in the future
    "setPassword": ["422"],  # password_too_common, password_contains_email
    "changePassword": ["400", "422"],  # password_not_set; current_password_incorrect, policy
    "endSession": ["404"],  # session_not_found: an id is a session only if it is one of yours
}

# Request-shape error codes: a request the schema accepts must never get one of these.
SHAPE_CODES = {
    "malformed_json",
    "validation_error",
    "unknown_attribute",
    "type_mismatch",
    "unsupported_media_type",
    "payload_too_large",
    "password_not_allowed",
    "redirect_url_requires_slug",
    "password_too_short",
    "password_too_long",
}


def _tos_in_future(case):
    """Whether the request's tos_accepted_at lies more than 5 minutes ahead (a clock rule)."""
    try:
        raw = case.body["data"]["attributes"]["tos_accepted_at"]
        head, dot, frac = raw.partition(".")
        if dot:  # Python 3.11 reads at most 6 fraction digits
            digits = len(frac) - len(frac.lstrip("0123456789"))
            raw = f"{head}.{frac[:min(digits, 6)]}{frac[digits:]}"
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return at.timestamp() > datetime.now(timezone.utc).timestamp() + 240
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
        return False


def _register_hooks():
    """Runs when Schemathesis loads this file as its hooks module (`hooks` in the config)."""
    import schemathesis
    from schemathesis.generation.meta import REQUEST_SHAPE_PROBES, coverage_scenario

    @schemathesis.hook
    def filter_body(ctx, body):
        """Leaves out bodies that are not UTF-8. Locally, `cargo lambda watch` turns a body
        with a textual Content-Type (application/json, text/*) into a string before the
        function runs and answers its own 500 (`https://httpstatuses.com/500`) when it is not
        UTF-8 — an emulator limit, not this service. The service's handling of arbitrary
        bytes is covered where the emulator passes them through: tests/e2e/hostile.test.mjs
        (invalid UTF-8 as application/vnd.api+json) and shared/tests/props.rs (any bytes
        through parse_document)."""
        if isinstance(body, (bytes, bytearray)):
            try:
                bytes(body).decode("utf-8")
            except UnicodeDecodeError:
                return False
        elif isinstance(body, str):
            try:
                body.encode("utf-8")
            except UnicodeEncodeError:
                return False
        return True

    @schemathesis.check
    def schema_valid_request_not_refused_as_invalid(ctx, response, case):
        meta = case.meta
        if meta is None or not meta.generation.mode.is_positive or response.status_code < 400:
            return None
        if coverage_scenario(case) in REQUEST_SHAPE_PROBES:
            return None  # a probe with another method or media type, not schema data
        try:
            errors = response.json()["errors"]
        except Exception:  # noqa: BLE001 - not a JSON:API error document: other checks judge it
            return None
        for e in errors if isinstance(errors, list) else []:
            code = e.get("code") if isinstance(e, dict) else None
            pointer = ((e.get("source") or {}).get("pointer")) if isinstance(e, dict) else None
            if code not in SHAPE_CODES:
                continue
            if code == "validation_error" and pointer == "/data/attributes/tos_accepted_at" and _tos_in_future(case):
                continue
            raise AssertionError(
                f"A request valid under openapi.yaml was refused as malformed: {response.status_code} "
                f"{code} at {pointer or '-'}: {e.get('detail')}. Tighten the schema or fix the server."
            )
        return None


def _toml_str(s):
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def config_text(token_set, hooks_path):
    lines = [
        f"hooks = {_toml_str(str(hooks_path))}",
        "[cache]",
        "enabled = false",
        # Generated data depends on the schema and the seed only, not on what the server
        # answered (values taken from responses, error-message feedback): reproducible runs.
        "[phases.examples.extra-data-sources]",
        "responses = false",
        # Requests with methods the schema does not list reach the router (cargo lambda watch
        # locally, API Gateway deployed), not this service: not ours to fuzz.
        "[phases.coverage]",
        "unexpected-methods = []",
        "[phases.coverage.extra-data-sources]",
        "responses = false",
        "[phases.fuzzing.extra-data-sources]",
        "responses = false",
        "[phases.fuzzing.error-feedback]",
        "enabled = false",
        "[checks.positive_data_acceptance]",
        f"expected-statuses = {json.dumps(POSITIVE_STATUSES)}",
    ]
    if token_set:
        lines += ["[auth.openapi.bearer]", 'bearer = "${E2E_ACCESS_TOKEN}"']
    for op, extra in POSITIVE_EXTRA.items():
        lines += [
            "[[operations]]",
            f"include-operation-id = {_toml_str(op)}",
            "[operations.checks.positive_data_acceptance]",
            f"expected-statuses = {json.dumps(POSITIVE_STATUSES + extra)}",
        ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-examples", type=int, default=MAX_EXAMPLES)
    parser.add_argument("--seed", type=int, default=SEED)
    args, passthrough = parser.parse_known_args()

    base = os.environ.get("E2E_API_URL")
    if not base:
        print("fuzz: E2E_API_URL is not set (the base URL of a running stack, e.g. http://127.0.0.1:3000)", file=sys.stderr)
        return 2
    try:
        import schemathesis  # noqa: F401
    except ImportError:
        print(f"fuzz: {sys.executable} has no schemathesis: run tools/install.sh (tools/requirements.txt)", file=sys.stderr)
        return 2
    token_set = bool(os.environ.get("E2E_ACCESS_TOKEN"))

    work = Path(tempfile.mkdtemp(prefix="contact-auth-fuzz-"))
    try:
        config = work / "schemathesis.toml"
        config.write_text(config_text(token_set, Path(__file__).resolve()))
        report = work / "report.json"
        cmd = [
            sys.executable, "-m", "schemathesis.cli",
            "--config-file", str(config), "--no-color",
            "run", str(SPEC),
            "--url", base,
            "--phases", "examples,coverage,fuzzing",
            "--checks", ",".join(CHECKS + [CUSTOM_CHECK]),
            "--mode", "all",
            "--max-examples", str(args.max_examples),
            "--seed", str(args.seed),
            "--workers", "1",
            "--generation-database", "none",
            "--request-timeout", "30",
            "--report", "json", "--report-json-path", str(report),
            *passthrough,
        ]
        shown = [("<config>" if a == str(config) else "<report>" if a == str(report) else a) for a in cmd[1:]]
        print("fuzz: python " + " ".join(shown), flush=True)
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=work)
        # A test runner's timeout (SIGTERM) or Ctrl-C stops Schemathesis too.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: proc.terminate())
        returncode = proc.wait()
        elapsed = time.monotonic() - started
        summary = summarize(report)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    verdict = "passed" if returncode == 0 else f"FAILED (schemathesis exit {returncode})"
    print(f"fuzz: {verdict}: {summary}, seed {args.seed}, max {args.max_examples} examples, {elapsed:.0f} s")
    return 0 if returncode == 0 else 1


def summarize(report):
    """`N operations, M test cases, F unique failures, E errors` from Schemathesis's JSON report."""
    try:
        data = json.loads(report.read_text())
        parts = [
            f"{data['operations']['tested']} operations",
            f"{data['test_cases']['generated']} test cases",
            f"{data['test_cases']['unique_failures']} unique failures",
            f"{len(data['errors'])} errors",
        ]
        warned = sorted(name for name, items in (data.get("warnings") or {}).items() if items)
        if warned:
            parts.append("warnings: " + " ".join(warned))
        return ", ".join(parts)
    except (OSError, ValueError, KeyError, TypeError):
        return "no JSON report (see the output above)"


if __name__ == "__main__":
    sys.exit(main())
else:
    _register_hooks()
