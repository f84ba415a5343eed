#!/usr/bin/env python3
"""The layer rule of README.md, "Layout": every project include points down.

    core   <- ref <- fast <- api <- cli, python        (tests, bench: anything)

core includes nothing of the project; ref includes core; fast includes core
and ref (its host wrappers reuse the reference checks); api includes core,
ref and fast; the front ends (cli, python) include core and api only. Every
project include is written from the repository root ("api/common/npy.hpp"),
so a relative include ("../x.hpp", or "x.hpp" for a file beside it) is also an
error. The user's words belong to the front ends too: a `parse_*` function
(text -> enum) in ref/ is an error; it lives in api/common/names.{hpp,cpp}, and
ref keeps only the way back (`*_name`, enum -> text) for its own messages.
Exits 1 listing every violation.

  scripts/check_layers.py [--root DIR]
"""
import argparse
import pathlib
import re
import sys

ALLOWED = {
    "core": {"core"},
    "ref": {"core", "ref"},
    "fast": {"core", "ref", "fast"},
    "api": {"core", "ref", "fast", "api"},
    "cli": {"core", "api", "cli"},
    "python": {"core", "api", "python"},
}
LAYERS = set(ALLOWED) | {"tests", "bench"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
PARSER = re.compile(r"\bparse_\w+\s*\(")
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
SUFFIXES = {".cpp", ".hpp", ".cu", ".cuh", ".h"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parent.parent))
    root = pathlib.Path(ap.parse_args().root)
    errors, files = [], 0
    for layer in sorted(LAYERS):
        for path in sorted((root / layer).rglob("*")):
            if path.suffix not in SUFFIXES or not path.is_file():
                continue
            files += 1
            rel = path.relative_to(root)
            if layer == "ref":
                # Comments blanked to spaces, newlines kept, so the line numbers stay right.
                code = COMMENT.sub(lambda c: re.sub(r"[^\n]", " ", c.group()), path.read_text(errors="replace"))
                for m in PARSER.finditer(code):
                    line = code[: m.start()].count("\n") + 1
                    errors.append(f"{rel}:{line}: {m.group().rstrip('( ')} in ref/: parsing user text into an enum "
                                  f"is the front ends' vocabulary; put it in api/common/names.{{hpp,cpp}}")
            for m in INCLUDE.finditer(path.read_text(errors="replace")):
                inc = m.group(1)
                line = path.read_text(errors="replace")[: m.start()].count("\n") + 1
                top = inc.split("/", 1)[0]
                if top not in LAYERS:
                    if (path.parent / inc).exists():
                        errors.append(f"{rel}:{line}: #include \"{inc}\" is relative; write it from the "
                                      f"repository root (\"{(path.parent / inc).resolve().relative_to(root)}\")")
                    continue  # a system or third-party header
                if not (root / inc).exists():
                    errors.append(f"{rel}:{line}: #include \"{inc}\" names no file of the repository")
                elif layer in ALLOWED and top not in ALLOWED[layer]:
                    errors.append(f"{rel}:{line}: {layer}/ may include {', '.join(sorted(ALLOWED[layer]))} only, "
                                  f"not {top}/ (\"{inc}\")")
    for e in errors:
        print(e)
    print(f"{files} files checked: {len(errors)} layer, include-style or vocabulary violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
