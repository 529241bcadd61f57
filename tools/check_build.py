#!/usr/bin/env python3
"""After `sam build` (make sam-build): every function of template.yaml has a built
`bootstrap` in .aws-sam/build/<LogicalId>/ that Lambda's provided.al2023 arm64 runtime
can execute (a 64-bit little-endian ELF executable for AArch64, mode +x), and the built
template points each function at it. Prints the sizes against the DESIGN budget
(<= 6 MB stripped, <= 3 MB zipped): a report, not a gate (see NOTES.md).

Prints one line per check and `N passed, M failed`; exits non-zero on any failure.
"""
import os
import struct
import sys
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cfn import ROOT, functions, load_template  # noqa: E402

BUILD = ROOT / ".aws-sam" / "build"
EM_AARCH64 = 183
MB = 1_000_000
results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")


def elf_machine(data):
    """(class, endianness, type, machine) of an ELF header, or None."""
    if len(data) < 20 or data[:4] != b"\x7fELF":
        return None
    ei_class, ei_data = data[4], data[5]
    e_type, e_machine = struct.unpack("<HH", data[16:20])
    return ei_class, ei_data, e_type, e_machine


source = functions(load_template())
built_template = BUILD / "template.yaml"
check("sam build wrote .aws-sam/build/template.yaml", built_template.exists())
built = functions(load_template(built_template)) if built_template.exists() else {}
check("the built template has every function of template.yaml", set(built) == set(source),
      f"{sorted(set(built) ^ set(source))}")

rows = []
for logical_id in sorted(source):
    path = BUILD / logical_id / "bootstrap"
    if not path.exists():
        check(f"{logical_id}: bootstrap built", False, f"{path} missing")
        continue
    data = path.read_bytes()
    header = elf_machine(data)
    check(f"{logical_id}: bootstrap is an AArch64 ELF64 LE executable",
          header is not None and header[0] == 2 and header[1] == 1 and header[2] in (2, 3)
          and header[3] == EM_AARCH64, f"header {header}")
    check(f"{logical_id}: bootstrap is executable", os.access(path, os.X_OK))
    code_uri = str(built.get(logical_id, {}).get("Properties", {}).get("CodeUri", ""))
    check(f"{logical_id}: built template's CodeUri is its build folder", Path(code_uri).name == logical_id,
          f"CodeUri {code_uri!r}")
    rows.append((logical_id, len(data), len(zlib.compress(data, 9))))

print("\nfunction                 bootstrap   zipped   (budget 6 MB / 3 MB)")
for name, size, zipped in rows:
    flag = "" if size <= 6 * MB and zipped <= 3 * MB else "  over budget"
    print(f"{name:<24} {size / MB:6.2f} MB {zipped / MB:6.2f} MB{flag}")

failed = results.count(False)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
