#!/usr/bin/python3
"""The documentation says what the code does.

- README's configuration table is exactly `ak2vault config-reference`;
- every setting of the schema appears in configs/ak2vault.cfg;
- README gives the two commands, and CI runs README's test command;
- README's table of contents lists its sections and subsections, in order,
  with the anchors GitHub gives them (`test_docs.py --write-toc` rewrites
  it);
- contributor material lives in CONTRIBUTING.md, and README names the
  license.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("AKV_BIN", os.path.join(ROOT, "bin"))

results = []
TOC_RE = re.compile(r"(## Contents\n\n)(.*?\n)\n(?=## )", re.S)


def anchor(title):
    """GitHub's anchor of a heading: lower case, punctuation dropped,
    spaces as hyphens."""
    a = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return a.replace(" ", "-")


def toc_of(text):
    """The table of contents \p text should carry: every ## and ###
    heading after the contents themselves, outside code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"(##|###) (.+)$", line)
        if fenced or not m or m.group(2) == "Contents":
            continue
        indent = "" if m.group(1) == "##" else "  "
        out.append("%s- [%s](#%s)" % (indent, m.group(2).replace("`", ""),
                                        anchor(m.group(2))))
    return "\n".join(out) + "\n"


def check(name, ok, reason=""):
    results.append(ok)
    print(("ok - " if ok else "not ok - ") + name + ("" if ok else ": " + reason))


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


readme = read("README.md")
if sys.argv[1:] == ["--write-toc"]:
    fixed = TOC_RE.sub(lambda m: m.group(1) + toc_of(readme) + "\n", readme,
                       count=1)
    with open(os.path.join(ROOT, "README.md"), "w", encoding="utf-8") as f:
        f.write(fixed)
    sys.exit(0)
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

toc = TOC_RE.search(readme)
check("README has a table of contents", toc is not None,
      "no '## Contents' section")
if toc:
    check("README's table of contents lists every section in order",
          toc.group(2) == toc_of(readme),
          "rewrite it with `tests/integration/test_docs.py --write-toc`")
contributing = read("CONTRIBUTING.md")
for title in ("The loopback stand-ins and the real broker", "Tests",
              "Benchmark", "Layout"):
    check("CONTRIBUTING.md has %r, README does not" % title,
          ("\n## %s\n" % title) in contributing and
          ("\n## %s\n" % title) not in readme, "misplaced")
check("README names the license", "MIT" in readme and
      os.path.exists(os.path.join(ROOT, "LICENSE")), "no license statement")

passed = sum(1 for r in results if r)
print("%d passed, %d failed" % (passed, len(results) - passed))
sys.exit(0 if passed == len(results) else 1)
