"""Measure Locator throughput on the demo county: ``python bench/bench_locate.py``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from layers.demo import demo_county  # noqa: E402
from layers.locate import Locator  # noqa: E402


def run(n: int = 1_000_000, repeat: int = 3, seed: int = 0) -> dict:
    """Locate ``n`` random points inside the demo county's bounds; return the best throughput."""
    units = demo_county()
    started = time.perf_counter()
    locator = Locator(units)
    build_s = time.perf_counter() - started
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = units.total_bounds
    lon = rng.uniform(minx, maxx, n)
    lat = rng.uniform(miny, maxy, n)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = locator.locate(lon, lat)
        timings.append(time.perf_counter() - started)
    single = 20_000
    started = time.perf_counter()
    for x, y in zip(lon[:single].tolist(), lat[:single].tolist()):
        locator.locate_one(x, y)
    single_us = (time.perf_counter() - started) / single * 1e6
    best = min(timings)
    return {
        "points": n,
        "polygons": int(units["level"].isin(["township", "grid"]).sum()),
        "build_s": round(build_s, 4),
        "seconds": round(best, 3),
        "points_per_s": round(n / best),
        "inside_share": round(float(1 - result.outside.mean()), 3),
        "locate_one_us": round(single_us, 2),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:>14}: {value}")
