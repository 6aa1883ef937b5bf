#!/usr/bin/python3
"""The documentation says what the code does.

- README's configuration table is exactly `ak2vault config-reference`;
- every setting of the schema appears in configs/ak2vault.cfg;
- README gives the two commands, and CI runs README's test command.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("AKV_BIN", os.path.join(ROOT, "bin"))

results = []


def check(name, ok, reason=""):
    results.append(ok)
    print(("ok - " if ok else "not ok - ") + name + ("" if ok else ": " + reason))


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


readme = read("README.md")
reference = subprocess.run([os.path.join(BIN, "ak2vault"), "config-reference"],
                           capture_output=True, text=True, check=True).stdout

m = re.search(r"<!-- config-reference:[^\n]*-->\n(.*?)<!-- /config-reference -->",
              readme, re.S)
check("README has a generated configuration table", m is not None,
      "markers not found")
if m:
    check("README's configuration table matches config-reference",
          m.group(1) == reference,
          "regenerate it with `bin/ak2vault config-reference`")

settings = re.findall(r"^\| `([a-z_.]+)` \|", reference, re.M)
# Secrets that may only come from the environment cannot appear in a file.
env_only = set(re.findall(r"^\| `([a-z_.]+)` \|.*\(environment only\)", reference, re.M))
check("config-reference lists settings", len(settings) > 20,
      "only %d found" % len(settings))
example = read("configs/ak2vault.cfg")
missing = []
for name in settings:
    if name in env_only:
        continue
    *groups, key = name.split(".")
    if not all(re.search(r"^\s*%s\s*:" % re.escape(g), example, re.M)
               for g in groups) or \
            not re.search(r"^\s*#?\s*%s\s*=" % re.escape(key), example, re.M):
        missing.append(name)
check("configs/ak2vault.cfg documents every setting", not missing,
      "missing: " + ", ".join(missing))

for cmd in ("make demo", "make test"):
    check("README gives `%s`" % cmd, cmd in readme, "not found")

ci = read(".ci/run")
last = [l.strip() for l in ci.splitlines() if l.strip() and not l.startswith("#")][-1]
check("CI runs README's test command", last in readme and last == "make test",
      "last .ci/run line is %r" % last)

passed = sum(1 for r in results if r)
print("%d passed, %d failed" % (passed, len(results) - passed))
sys.exit(0 if passed == len(results) else 1)
