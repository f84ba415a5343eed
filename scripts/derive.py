#!/usr/bin/env python3
"""The main job: the whole derivation, chapter by chapter.

For every chapter registered in derive/ (one file per chapter, NN-name.py,
discovered by name: adding a chapter adds one file, nothing here changes) it
runs the float64 references, the fast CUDA versions when a device exists,
records one row per checked equation in the equivalence table, and writes the
chapter's figures. At the end it prints the table and writes
OUT/summary.md and OUT/summary.json. Exit status 1 if any row failed.

    scripts/derive.py [--out out/derive] [--quick] [--chapters 01,02]

Needs the compiled module: run through `scripts/run.sh main`, or with
PYTHONPATH=build/python.
"""
import argparse
import importlib.util
import json
import pathlib
import platform
import sys
import time
import warnings

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent

try:
    import idattn  # noqa: E402
except ImportError as e:  # pragma: no cover - a clear message instead of a traceback
    sys.exit(f"derive: cannot import the idattn module ({e}); build first and set PYTHONPATH=build/python, "
             "or use scripts/run.sh main")


# The api's dtype notes ("inputs ... are float32: promoted exactly to float64") are expected
# here; fallback notes (no device) stay visible.
warnings.filterwarnings("ignore", message="inputs .* (promoted|rounded)")


class Context:
    """What a chapter's run(ctx) gets: sizes, randomness, device, table and figures."""

    def __init__(self, out, quick, seed):
        self.out = out
        self.quick = quick
        self.seed = seed
        status = idattn.device_status()
        self.has_device = status["available"]
        self.device = status["detail"]
        self.rows = []
        self.figures = []
        self.chapter = None
        self._t0 = time.time()

    def rng(self, salt=0):
        return np.random.default_rng([self.seed, salt])

    def log(self, msg):
        print(f"[{time.time() - self._t0:6.1f}s] {self.chapter}: {msg}", flush=True)

    def row(self, label, what, comparison, backend):
        """One line of the equivalence table from an idattn.compare(...) result."""
        self.rows.append({"chapter": self.chapter, "label": label, "what": what,
                          "rel_err": comparison["rel_rms"], "threshold": comparison["threshold"],
                          "pass": bool(comparison["pass"]), "backend": backend})

    def skipped(self, label, what, reason):
        self.rows.append({"chapter": self.chapter, "label": label, "what": what, "rel_err": None,
                          "threshold": None, "pass": None, "backend": f"skipped: {reason}"})

    def figure(self, fig, name, caption):
        path = self.out / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self.figures.append({"chapter": self.chapter, "file": path.name, "caption": caption})
        self.log(f"wrote {path}")


def chapters(selected):
    for path in sorted((ROOT / "derive").glob("[0-9][0-9]-*.py")):
        if selected and path.name[:2] not in selected:
            continue
        spec = importlib.util.spec_from_file_location(f"derive_{path.stem.replace('-', '_')}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield path.stem, mod


def fmt(x):
    return "-" if x is None else f"{x:.2e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "out" / "derive"))
    ap.add_argument("--quick", action="store_true", help="small sizes (used by the test suite)")
    ap.add_argument("--chapters", default="", help="comma-separated chapter numbers, e.g. 01,02")
    ap.add_argument("--seed", type=int, default=20260526)
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(out, args.quick, args.seed)
    print(f"Interdomain Attention derivation; outputs in {out}; seed {args.seed}")
    print(f"fast backend: {'CUDA device ' + ctx.device if ctx.has_device else 'not run (' + ctx.device + ')'}")
    selected = [c for c in args.chapters.split(",") if c]
    for stem, mod in chapters(selected):
        ctx.chapter = stem
        ctx.log(mod.TITLE)
        mod.run(ctx)

    header = "| chapter | equation | what | rel. error | threshold | result | backend |"
    lines = [header, "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in ctx.rows:
        result = "skipped" if r["pass"] is None else ("pass" if r["pass"] else "FAIL")
        lines.append(f"| {r['chapter']} | eq:{r['label']} | {r['what']} | {fmt(r['rel_err'])} | "
                     f"{fmt(r['threshold'])} | {result} | {r['backend']} |")
    table = "\n".join(lines)
    print("\nEquivalence table\n" + table)
    failed = [r for r in ctx.rows if r["pass"] is False]
    md = ["# Interdomain Attention: derivation run", "",
          f"- machine: {platform.platform()}", f"- fast backend: {ctx.device}",
          f"- seed: {args.seed}{' (quick sizes)' if args.quick else ''}", "", "## Equivalence table", "", table, "",
          "## Figures", ""]
    for f in ctx.figures:
        md += [f"### {f['chapter']}: {f['caption']}", "", f"![{f['caption']}]({f['file']})", ""]
    (out / "summary.md").write_text("\n".join(md))
    (out / "summary.json").write_text(json.dumps({"seed": args.seed, "quick": args.quick, "device": ctx.device,
                                                  "rows": ctx.rows, "figures": ctx.figures}, indent=1))
    print(f"\nwrote {out / 'summary.md'} and {out / 'summary.json'}; {len(ctx.rows)} rows, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
