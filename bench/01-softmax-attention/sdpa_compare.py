#!/usr/bin/env python3
"""Chapter 1: PyTorch's scaled_dot_product_attention (float32) next to our fast kernel.

Runs on the GPU machine, which has PyTorch and nothing else (no numpy needed).
Times torch.nn.functional.scaled_dot_product_attention with the protocol of
bench_fast: shapes (B, H, N, d), N_q = N, float32, warm-up, then each
repetition timed on its own with CUDA events, median reported, inputs rotated
over enough buffer sets to cover the L2 cache three times. FLOPs: 4 N^2 d per
head, half when causal. Reads bench_fast's CSV and prints/writes a side-by-side
table with the ratio ours/SDPA (throughput; > 1 means ours is faster).

With --dump DIR (written by `bench_fast --dump DIR`), also checks accuracy on
that one shape: our output and SDPA's float32 output, both against SDPA in
float64 (the math backend), with the project's pass rule
err(ours) <= 2 err(sdpa32) + floor.

  sdpa_compare.py [--fast-csv FILE] [--out-csv FILE] [--out-md FILE] [--dump DIR]
                  [--reps 30] [--warmup 3] [--batch 1] [--heads 32]
                  [--n 512,1024,2048,4096,8192] [--d 64,128] [--dtypes float32,bfloat16]

--dtypes picks SDPA's input types. Our kernel is float32 only; the bfloat16 rows
time SDPA in bfloat16 (its default, tensor-core FlashAttention path) on the same
shapes, so the table also shows how far a float32 SIMT kernel is from that.
"""
import argparse
import ast
import csv
import math
import os
import statistics
import sys

import torch
import torch.nn.functional as F


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fast-csv", default="bench/results/01-softmax-attention-fast.csv")
    p.add_argument("--out-csv", default="bench/results/01-softmax-attention-sdpa.csv")
    p.add_argument("--out-md", default="bench/results/01-softmax-attention-compare.md")
    p.add_argument("--dump", default="", help="directory with q/k/v/o_full/o_causal .npy from bench_fast --dump")
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--n", default="512,1024,2048,4096,8192")
    p.add_argument("--d", default="64,128")
    p.add_argument("--dtypes", default="float32,bfloat16", help="SDPA input types: float32, bfloat16, float16")
    return p.parse_args()


def flops(b, h, n, d, causal):
    return 4.0 * n * n * d * b * h * (0.5 if causal else 1.0)


def time_sdpa(b, h, n, d, causal, reps, warmup, l2_bytes, dtype=torch.float32):
    count = b * h * n * d
    set_bytes = 4 * count * torch.tensor([], dtype=dtype).element_size()  # q, k, v, o
    sets = min(8, max(2, math.ceil(3 * l2_bytes / set_bytes)))
    free, _ = torch.cuda.mem_get_info()
    while sets > 1 and sets * set_bytes > free // 2:
        sets -= 1
    gen = torch.Generator(device="cuda").manual_seed(1234 + n + d)
    bufs = []
    for _ in range(sets):
        q, k, v = ((torch.rand((b, h, n, d), device="cuda", dtype=torch.float32, generator=gen) * 2 - 1).to(dtype)
                   for _ in range(3))
        bufs.append((q, k, v))

    def run(r):
        q, k, v = bufs[r % sets]
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    with torch.no_grad():
        for r in range(warmup):
            run(r)
        torch.cuda.synchronize()
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        stops = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
        for r in range(reps):
            starts[r].record()
            run(r)
            stops[r].record()
        torch.cuda.synchronize()
    ms = sorted(s.elapsed_time(e) for s, e in zip(starts, stops))
    bufs.clear()
    torch.cuda.empty_cache()
    return statistics.median(ms), ms[0], sets


def accepted_backends():
    """Which SDPA backends accept a float32 input of this kind (the default picks among them)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:
        return "unknown (torch.nn.attention missing)"
    x = torch.rand((1, 2, 64, 64), device="cuda", dtype=torch.float32)
    names = []
    for name in ("CUDNN_ATTENTION", "FLASH_ATTENTION", "EFFICIENT_ATTENTION", "MATH"):
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            continue
        try:
            with sdpa_kernel([backend]):
                F.scaled_dot_product_attention(x, x, x)
            torch.cuda.synchronize()
            names.append(name)
        except RuntimeError:
            pass
    return ", ".join(names) if names else "none"


def read_npy(path):
    """Minimal .npy reader (little-endian float32, C order) returning a CPU torch tensor."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:6] != b"\x93NUMPY":
        raise ValueError(f"{path}: not a .npy file")
    major = data[6]
    if major == 1:
        hlen, start = int.from_bytes(data[8:10], "little"), 10
    else:
        hlen, start = int.from_bytes(data[8:12], "little"), 12
    header = ast.literal_eval(data[start:start + hlen].decode("latin1"))
    if header["descr"] != "<f4" or header["fortran_order"]:
        raise ValueError(f"{path}: expected little-endian float32 in C order, got {header}")
    shape = tuple(header["shape"])
    t = torch.frombuffer(bytearray(data[start + hlen:]), dtype=torch.float32)
    return t.reshape(shape)


def err_stats(x, ref):
    diff = (x.double() - ref).abs()
    rel_rms = (diff.pow(2).mean().sqrt() / ref.pow(2).mean().sqrt()).item()
    return diff.max().item(), rel_rms, bool(torch.isfinite(x).all().item())


def check_dump(directory):
    """Our kernel's outputs against SDPA in float64; returns True when within the pass rule."""
    q, k, v = (read_npy(os.path.join(directory, f"{n}.npy")).cuda() for n in ("q", "k", "v"))
    ok = True
    print(f"\naccuracy on the dumped shape {tuple(q.shape)} (reference: SDPA in float64, math backend)")
    for causal, name in ((False, "o_full"), (True, "o_causal")):
        ours = read_npy(os.path.join(directory, f"{name}.npy")).cuda()
        with torch.no_grad():
            ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=causal)
            sdpa32 = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        o_max, o_rms, o_finite = err_stats(ours, ref)
        s_max, s_rms, _ = err_stats(sdpa32, ref)
        floor = 4 * torch.finfo(torch.float32).eps  # a few ulps of an O(1) output, relative
        passed = o_finite and o_rms <= 2 * s_rms + floor
        ok = ok and passed
        print(f"  causal={causal!s:5}  ours: max|err| {o_max:.3e} rel RMS {o_rms:.3e}   "
              f"sdpa32: max|err| {s_max:.3e} rel RMS {s_rms:.3e}   "
              f"{'PASS' if passed else 'FAIL'} (rule: ours <= 2 sdpa32 + {floor:.1e}; finite={o_finite})")
    return ok


def main():
    args = parse_args()
    if not torch.cuda.is_available():
        print("sdpa_compare: skipped: torch.cuda.is_available() is False")
        return 0
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 * 2**20) or 50 * 2**20
    device = f"{props.name} (sm_{props.major}{props.minor}, {props.multi_processor_count} SMs)"
    print(f"sdpa_compare: torch {torch.__version__} (CUDA {torch.version.cuda}) on {device}")
    print(f"float32 SDPA backends accepting the input: {accepted_backends()}; "
          f"allow_tf32 (matmul) = {torch.backends.cuda.matmul.allow_tf32}")

    ok = True
    if args.dump:
        ok = check_dump(args.dump)

    ns = [int(x) for x in args.n.split(",")]
    ds = [int(x) for x in args.d.split(",")]
    dtypes = [x.strip() for x in args.dtypes.split(",") if x.strip()]
    for name in dtypes:
        if not isinstance(getattr(torch, name, None), torch.dtype):
            raise SystemExit(f"sdpa_compare: --dtypes: unknown torch dtype {name!r}")
    rows = []
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        print(f"\nSDPA {dtype_name}, B = {args.batch}, H = {args.heads}, median of {args.reps} reps after "
              f"{args.warmup} warm-up")
        print(f"{'N':>6} {'d':>4} {'causal':>6} {'ms(med)':>10} {'ms(min)':>10} {'TFLOP/s':>9} {'sets':>5}")
        for d in ds:
            for causal in (False, True):
                for n in ns:
                    med, mn, sets = time_sdpa(args.batch, args.heads, n, d, causal, args.reps, args.warmup, l2, dtype)
                    tf = flops(args.batch, args.heads, n, d, causal) / (med * 1e-3) / 1e12
                    print(f"{n:>6} {d:>4} {'yes' if causal else 'no':>6} {med:>10.4f} {mn:>10.4f} {tf:>9.2f} "
                          f"{sets:>5}", flush=True)
                    rows.append(dict(impl="sdpa", dtype=dtype_name, device=device.replace(",", ";"), B=args.batch,
                                     H=args.heads, N=n, d=d, causal=int(causal), ms_median=med, ms_min=mn, tflops=tf,
                                     reps=args.reps))

    for path in (args.out_csv, args.out_md):
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(args.out_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out_csv}")

    fast = {}
    if os.path.exists(args.fast_csv):
        with open(args.fast_csv) as f:
            for r in csv.DictReader(f):
                fast[(int(r["N"]), int(r["d"]), int(r["causal"]), int(r["B"]), int(r["H"]))] = float(r["ms_median"])
    else:
        print(f"no fast results at {args.fast_csv}: the comparison table has SDPA only")

    # One line per shape: ours (float32) against SDPA in each dtype timed.
    by_shape = {}
    for r in rows:
        by_shape.setdefault((r["N"], r["d"], r["causal"], r["B"], r["H"]), {})[r["dtype"]] = r
    cols = "".join(f" SDPA {t} ms | SDPA {t} TFLOP/s | ours/SDPA {t} |" for t in dtypes)
    header = "| N | d | causal | ours ms | ours TFLOP/s |" + cols
    lines = [f"Softmax attention forward, B = {args.batch}, H = {args.heads}, N_q = N, on {device}, "
             f"torch {torch.__version__}. Ours is float32; SDPA in {', '.join(dtypes)}. Median of {args.reps} reps; "
             f"ours/SDPA is the throughput ratio (> 1: ours faster).", "", header,
             "|---:|---:|:---:|---:|---:|" + "---:|---:|---:|" * len(dtypes)]
    print("\n" + header)
    for key, per_dtype in by_shape.items():
        n, d, causal, b, h = key
        ours = fast.get(key)
        ours_tf = flops(b, h, n, d, causal) / (ours * 1e-3) / 1e12 if ours else None
        line = f"| {n} | {d} | {'yes' if causal else 'no'} | " + (
            f"{ours:.4f} | {ours_tf:.2f} |" if ours else "- | - |")
        for t in dtypes:
            r = per_dtype.get(t)
            if r is None:
                line += " - | - | - |"
                continue
            ratio = f"{r['ms_median'] / ours:.2f}" if ours else "-"
            line += f" {r['ms_median']:.4f} | {r['tflops']:.2f} | {ratio} |"
        print(line)
        lines.append(line)
    with open(args.out_md, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out_md}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
