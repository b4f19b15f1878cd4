#!/usr/bin/env python3
"""Prints the module dependency edges from the includes and fails on an edge against the rule.

A module is a top-level folder (firmware/model is a module of its own: the domain's plain
types, which http/ and fetch/ may see; so is upstream/core: the pure upstream rules and the
sans-I/O FUS session, which the model's errors name). The rule (docs/architecture.md):
  - pure rooms (crypto, protocol, upstream/core, zip, archive, config, obs, firmware/model,
    http, and fetch/fetch_plan.*, firmware/metadata_cache.* and lru_map.hpp) never include
    Asio or Beast;
  - each module includes only the modules listed in ALLOWED below (plus itself);
  - tests/, bench/ and cli/ may include anything; fuzz/ only pure rooms.
Usage: scripts/check-deps.py [ROOT]   (exit 1 on a violation)
"""
import pathlib
import re
import sys

PURE = {"crypto", "protocol", "upstream/core", "zip", "archive", "config", "obs",
        "firmware/model", "http"}
PURE_FILES = {"fetch/fetch_plan.hpp", "fetch/fetch_plan.cpp", "firmware/lru_map.hpp",
              "firmware/metadata_cache.hpp", "firmware/metadata_cache.cpp"}
ALLOWED = {
    "crypto": set(),
    "protocol": {"crypto"},
    "zip": set(),
    "archive": set(),
    "config": set(),
    "net": set(),
    "obs": {"config"},
    "upstream/core": {"protocol", "crypto"},
    "upstream": {"upstream/core", "protocol", "crypto", "net"},
    "firmware/model": {"upstream/core", "protocol", "crypto"},
    "fetch": {"crypto", "protocol", "upstream", "upstream/core", "net", "obs", "firmware/model",
              "zip", "config"},
    "firmware": {"firmware/model", "fetch", "upstream", "upstream/core", "protocol", "crypto",
                 "zip", "archive", "obs", "config", "net"},
    "http": {"firmware/model", "protocol", "config", "crypto"},
    "server": {"http", "firmware", "firmware/model", "fetch", "upstream", "upstream/core",
               "protocol", "crypto", "zip", "archive", "obs", "config", "net"},
    "sim": {"crypto", "protocol", "archive", "zip", "config", "net"},
    "fuzz": PURE | {"fetch"},
}
FREE = {"tests", "bench", "cli"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]', re.M)
IO_HEADERS = re.compile(r"^boost/(asio|beast)(/|\.hpp)")


def module_of(path: str):
    parts = path.split("/")
    if len(parts) >= 3 and (parts[0], parts[1]) in (("firmware", "model"), ("upstream", "core")):
        return parts[0] + "/" + parts[1]
    return parts[0] if len(parts) >= 2 else None


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    edges, bad = {}, []
    for f in sorted(root.rglob("*")):
        if f.suffix not in (".hpp", ".cpp", ".h") or not f.is_file():
            continue
        rel = f.relative_to(root).as_posix()
        if rel.startswith(("build", ".git")) or "/build" in rel.split("/")[0]:
            continue
        mod = module_of(rel)
        if mod is None or mod in FREE or mod not in ALLOWED:
            continue
        pure = mod in PURE or rel in PURE_FILES
        for kind, target in INCLUDE.findall(f.read_text(errors="replace")):
            if kind == "<":
                if pure and IO_HEADERS.match(target):
                    bad.append(f"{rel}: pure module includes <{target}>")
                continue
            dep = module_of(target)
            if dep is None or dep == mod or dep in FREE:
                continue
            edges[(mod, dep)] = edges.get((mod, dep), 0) + 1
            if dep not in ALLOWED[mod]:
                bad.append(f'{rel}: {mod} -> {dep} ("{target}") is against the rule')
            if rel in PURE_FILES and dep not in PURE:
                bad.append(f'{rel}: pure file includes "{target}"')
    for (a, b), n in sorted(edges.items()):
        print(f"{a:15} -> {b:15} {n:3} include(s)")
    for line in bad:
        print("VIOLATION", line, file=sys.stderr)
    print(f"{len(edges)} edges, {len(bad)} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
