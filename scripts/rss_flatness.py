#!/usr/bin/env python3
"""Judges whether a process's resident memory stayed flat over a soak run.

Reads the CSV that scripts/soak_server.sh and scripts/soak_agent.sh write
(a header line, then one sample a line: `elapsed_s,rss_kib[,...]`), and
prints one line of `key=value` figures:

    rss_start_mib, rss_peak_mib, rss_end_mib   over the whole run
    first_half_max_mib, second_half_max_mib    after the warm-up
    slope_mib_per_h                            least squares, after the warm-up
    allowed_mib                                how far the second half may rise
    memory=flat | memory=growing | memory=unknown (too few samples)

Memory is flat when, after the warm-up (by default a sixth of the run, at
most 10 minutes), the largest sample of the second half is at most the
largest of the first half plus the tolerance: 10 % of it or 2 MiB,
whichever is larger. The exit status is 0 when flat, 1 when growing, 2 when
there are too few samples (fewer than two in each half) or the file is
unreadable.

    python3 scripts/rss_flatness.py FILE.csv [--column rss_kib]
        [--warmup SECONDS] [--tolerance-pct 10] [--tolerance-mib 2]
"""

import argparse
import csv
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv_file")
    parser.add_argument("--column", default="rss_kib", help="the sampled column, in KiB")
    parser.add_argument("--warmup", type=float, help="seconds left out at the start")
    parser.add_argument("--tolerance-pct", type=float, default=10.0)
    parser.add_argument("--tolerance-mib", type=float, default=2.0)
    args = parser.parse_args()

    try:
        with open(args.csv_file, newline="") as f:
            rows = list(csv.DictReader(f))
        samples = [(float(r["elapsed_s"]), float(r[args.column]) / 1024) for r in rows if r.get(args.column)]
    except (OSError, KeyError, ValueError) as e:
        print(f"memory=unknown reason={e!r}")
        return 2
    if not samples:
        print("memory=unknown reason=no_samples")
        return 2

    run = samples[-1][0] - samples[0][0]
    warmup = args.warmup if args.warmup is not None else min(run / 6, 600.0)
    start, peak, end = samples[0][1], max(s[1] for s in samples), samples[-1][1]
    figures = f"rss_start_mib={start:.1f} rss_peak_mib={peak:.1f} rss_end_mib={end:.1f}"

    judged = [s for s in samples if s[0] - samples[0][0] >= warmup]
    half = len(judged) // 2
    first, second = judged[:half], judged[half:]
    if len(first) < 2 or len(second) < 2:
        print(f"{figures} samples={len(samples)} warmup_s={warmup:.0f} memory=unknown reason=too_few_samples")
        return 2

    first_max = max(s[1] for s in first)
    second_max = max(s[1] for s in second)
    allowed = max(first_max * args.tolerance_pct / 100, args.tolerance_mib)
    slope = least_squares_slope(judged) * 3600
    flat = second_max <= first_max + allowed
    print(
        f"{figures} first_half_max_mib={first_max:.1f} second_half_max_mib={second_max:.1f} "
        f"allowed_mib={allowed:.1f} slope_mib_per_h={slope:.2f} samples={len(samples)} "
        f"warmup_s={warmup:.0f} memory={'flat' if flat else 'growing'}"
    )
    return 0 if flat else 1


def least_squares_slope(samples):
    """MiB a second, fitted through the (seconds, MiB) samples."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (m - mean_m) for t, m in samples) / var


if __name__ == "__main__":
    sys.exit(main())
