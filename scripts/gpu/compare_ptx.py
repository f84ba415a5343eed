#!/usr/bin/env python3
"""Check that moving CUDA code between files left every kernel unchanged.

Compiles two lists of .cu files to PTX (nvcc -ptx, one compute architecture,
the project's flags), takes every kernel (.entry) and device function (.func)
body out of the PTX and compares the two sets: the same names, and for each
name the same body, text for text. Needs nvcc, not a GPU.

Usage:
    compare_ptx.py --before OLD.cu [OLD.cu ...] --after NEW.cu [NEW.cu ...]
                   [--arch compute_90] [--nvcc PATH] [--root DIR] [--keep DIR]

A "before" file is usually a file from an earlier commit put anywhere, e.g.
    git show HEAD:fast/02-kernel-feature-map/feature_map.cu > /tmp/before/feature_map.cu
Includes are resolved through -I ROOT (default: the repository root), so a copy
compiles outside the tree; take the "before" PTX while the headers it includes
are still the old ones if they change too.

What is normalised before comparing (it depends on the file, not on the code):
  * the anonymous-namespace name nvcc derives from the file,
    _GLOBAL__N__<hex>_<n>_<file>_cu_<hex>, with its length prefix in mangled
    names, becomes ANON (so a kernel keeps its name when it changes files);
  * basic-block labels $L__BB<function index>_<n> lose the function index, and
    __local_depot<function index> likewise (the index is the function's place
    in its file).
Nothing else is: a register, an instruction or a constant that differs is a
difference. Module-level declarations (.global, .const, .extern .shared) are
compared as a set and reported beside the bodies.

Exit status: 0 when every body is identical, 1 when anything differs, 2 on a
compile error.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NVCC_DEFAULT = "/usr/local/cuda/bin/nvcc"

ANON_START = re.compile(r"(\d*)_GLOBAL__N__[0-9A-Fa-f]+_\d+_")
ANON_TAIL = re.compile(r"_cu_[0-9A-Fa-f]+$")
FUNC_HEADER = re.compile(r"^(?:\.visible\s+|\.weak\s+|\.extern\s+)*\.(entry|func)\s+(?:\([^)]*\)\s*)?([\w$]+)")
TOP_DECL = re.compile(r"^(?:\.visible\s+|\.weak\s+|\.extern\s+)*\.(global|const|shared)\b")


def normalise_anon(text: str) -> str:
    """Replace every anonymous-namespace identifier (and its mangled length) by ANON."""
    out, pos = [], 0
    for m in ANON_START.finditer(text):
        if m.start() < pos:
            continue
        digits, start = m.group(1), m.start() + len(m.group(1))
        end = None
        # The mangled length prefix gives the identifier's exact extent; the
        # digit run may carry digits of the name before it, so try its suffixes.
        for k in range(len(digits)):
            length = int(digits[k:])
            cand = text[start:start + length]
            if len(cand) == length and ANON_TAIL.search(cand):
                out.append(text[pos:m.start() + k])
                end = start + length
                break
        if end is None:  # not mangled (no length): take the hex tail greedily
            tail = re.compile(r"_cu_[0-9A-Fa-f]{8}").search(text, m.end())
            if tail is None:
                continue
            out.append(text[pos:start])
            end = tail.end()
        out.append("ANON")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def normalise(text: str) -> str:
    text = normalise_anon(text)
    text = re.sub(r"\$L__BB\d+_", "$L__BB_", text)
    text = re.sub(r"__local_depot\d+", "__local_depot", text)
    return text


def split_ptx(ptx: str):
    """Returns ({name: body} of .entry, {name: body} of .func, set of top-level declarations)."""
    entries, funcs, decls = {}, {}, set()
    lines = ptx.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FUNC_HEADER.match(line)
        if m:
            # A prototype ends with ';' before any '{'; a definition runs to the '}' in column 0.
            j, body = i, []
            while j < len(lines):
                body.append(lines[j])
                if lines[j].rstrip().endswith(";") and "{" not in "".join(body):
                    break
                if lines[j].startswith("}"):
                    break
                j += 1
            if "{" in "".join(body):
                kind, name = m.group(1), m.group(2)
                table = entries if kind == "entry" else funcs
                text = "\n".join(body)
                if name in table and table[name] != text:
                    raise SystemExit(f"two different bodies for {name} in one set")
                table[name] = text
            i = j + 1
            continue
        if TOP_DECL.match(line):
            decls.add(line.strip())
        i += 1
    return entries, funcs, decls


def compile_ptx(cu: Path, out: Path, args) -> str:
    cmd = [args.nvcc, "-DIDATTN_HAVE_CUDA=1", f"-I{args.root}", "-O3", "-DNDEBUG", f"-arch={args.arch}",
           "--expt-relaxed-constexpr", "-std=c++17", "-x", "cu", "-ptx", str(cu), "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(f"nvcc failed on {cu}:\n{r.stderr}")
        sys.exit(2)
    return out.read_text()


def collect(files, tag, workdir: Path, args):
    entries, funcs, decls = {}, {}, set()
    for n, cu in enumerate(files):
        ptx = normalise(compile_ptx(Path(cu), workdir / f"{tag}{n}_{Path(cu).stem}.ptx", args))
        e, f, d = split_ptx(ptx)
        for table, part in ((entries, e), (funcs, f)):
            for name, body in part.items():
                if name in table and table[name] != body:
                    raise SystemExit(f"{tag}: {name} has two different bodies in two files")
                table[name] = body
        decls |= d
    return entries, funcs, decls


def compare(kind: str, before: dict, after: dict) -> bool:
    same = [n for n in before if n in after and before[n] == after[n]]
    differ = [n for n in before if n in after and before[n] != after[n]]
    gone = [n for n in before if n not in after]
    new = [n for n in after if n not in before]
    lines = sum(len(before[n].splitlines()) for n in same)
    print(f"{kind}: {len(before)} before, {len(after)} after; {len(same)} identical ({lines} PTX lines), "
          f"{len(differ)} differ, {len(gone)} only before, {len(new)} only after")
    for n in differ:
        print(f"  DIFFERS: {n}")
        diff = difflib.unified_diff(before[n].splitlines(), after[n].splitlines(), "before", "after", lineterm="", n=1)
        for k, d in enumerate(diff):
            if k >= 40:
                print("    ...")
                break
            print("    " + d)
    for n in gone:
        print(f"  ONLY BEFORE: {n}")
    for n in new:
        print(f"  ONLY AFTER: {n}")
    return not (differ or gone or new)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--before", nargs="+", required=True, help=".cu files before the move")
    p.add_argument("--after", nargs="+", required=True, help=".cu files after the move")
    p.add_argument("--arch", default="compute_90", help="virtual architecture of the PTX (default compute_90)")
    p.add_argument("--nvcc", default=os.environ.get("NVCC", NVCC_DEFAULT))
    p.add_argument("--root", default=str(ROOT), help="include root (default: the repository root)")
    p.add_argument("--keep", help="keep the PTX files here instead of in a temporary folder")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        be, bf, bd = collect(args.before, "before", work, args)
        ae, af, ad = collect(args.after, "after", work, args)
    print(f"PTX for {args.arch}; before: {' '.join(map(str, args.before))}; after: {' '.join(map(str, args.after))}")
    ok = compare("kernels (.entry)", be, ae)
    ok = compare("device functions (.func)", bf, af) and ok
    if bd == ad:
        print(f"module-level declarations: the same {len(bd)}")
    else:
        ok = False
        print("module-level declarations differ:")
        for d in sorted(bd - ad):
            print(f"  ONLY BEFORE: {d}")
        for d in sorted(ad - bd):
            print(f"  ONLY AFTER: {d}")
    print("RESULT: identical" if ok else "RESULT: DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
