#!/usr/bin/env python3
"""Execute a notebook kept as a percent-format .py file, headless.

notebooks/NN-name.py is the source of truth (diff-friendly): `# %%` starts a
code cell, `# %% [markdown]` a markdown cell whose lines are `# `-commented.
This script converts it to .ipynb with nbformat, executes it with nbclient
(the python3 kernel = /usr/bin/python3), and writes the executed notebook to
--out. A failing cell fails the script (exit 1), with the cell's error.

    scripts/run_notebook.py notebooks/01-softmax-attention.py --out build/notebooks
"""
import argparse
import os
import pathlib
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def percent_to_notebook(text):
    cells, kind, buf = [], None, []

    def flush():
        if kind is None:
            return
        src = "\n".join(buf).strip("\n")
        if kind == "markdown":
            src = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in src.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(src))
        elif src:
            cells.append(nbformat.v4.new_code_cell(src))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, buf = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            buf.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=int, default=600)
    args = ap.parse_args()
    src = pathlib.Path(args.source).resolve()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    nb = percent_to_notebook(src.read_text())
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ["IDATTN_NOTEBOOK_OUT"] = str(out.resolve())
    os.environ["IDATTN_SOURCE_DIR"] = str(pathlib.Path(__file__).resolve().parent.parent)
    client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3", resources={"metadata": {"path": str(out)}})
    target = out / (src.stem + ".ipynb")
    try:
        client.execute()
    except CellExecutionError as e:
        nbformat.write(nb, target)
        print(f"notebook {src.name}: a cell failed (partial notebook in {target}):\n{e}", file=sys.stderr)
        return 1
    nbformat.write(nb, target)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    print(f"notebook {src.name}: {n_code} code cells executed; wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
