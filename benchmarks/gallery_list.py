"""Gallery list latency with 10,000 items: p50/p95 of ``GET /api/gallery`` (the full HTTP
handler through Starlette's TestClient, and the bare store query) for the page's typical
queries. Bar: p95 < 50 ms.

    python benchmarks/gallery_list.py [--items 10000] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

BAR_MS = 50.0
QUERIES = [
    "/api/gallery?limit=60",
    "/api/gallery?limit=60&offset=5000",
    "/api/gallery?limit=60&model=model-3",
    "/api/gallery?limit=60&source=breed&sort=rating",
    "/api/gallery?limit=60&q=sunset",
    "/api/gallery?limit=60&tag=favourite",
    "/api/gallery?limit=60&min_rating=4",
]


def seed(db: Path, n: int) -> None:
    """``n`` items over 8 models and 3 sources, latents of 128 floats, lineage, some tags
    and ratings."""
    from muselab.store import gallery
    from muselab.store.db import connect

    conn = gallery.init(connect(db))
    rng = np.random.default_rng(0)
    batch = []
    for i in range(n):
        parents = [int(rng.integers(1, i))] if i > 10 and i % 3 == 0 else []
        batch.append(gallery.NewItem(
            kind="image", file=f"{i:02x}/{i}.png", prompt="sunset over the sea" if i % 50 == 0
            else "", params={"op": "seed"}, seed=i, model=f"model-{i % 8}",
            weights_hash="0" * 64, latent=rng.standard_normal(128).astype(np.float32),
            source=("create", "breed", "sample")[i % 3], parents=parents,
            tags=["favourite"] if i % 97 == 0 else []))
        if len(batch) == 500:
            gallery.add_items(conn, batch)
            batch = []
    if batch:
        gallery.add_items(conn, batch)
    for item_id in rng.choice(np.arange(1, n + 1), size=n // 10, replace=False):
        gallery.rate(conn, int(item_id), float(rng.integers(1, 6)))
    conn.close()


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.array(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from muselab.store import gallery
    from muselab.store.db import connect
    from muselab.studio.app import create_app
    from muselab.studio.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MUSELAB_HOME"] = tmp
        db = Path(tmp) / "studio.sqlite3"
        t0 = time.perf_counter()
        seed(db, args.items)
        print(f"seeded {args.items:,} items in {time.perf_counter() - t0:.1f} s")
        client = TestClient(create_app(Settings(db=db, runs=Path(tmp) / "runs")))
        conn = connect(db)
        worst = 0.0
        print(f"{'query':52s} {'http p50':>9s} {'http p95':>9s} {'store p95':>9s} {'of bar':>7s}")
        for q in QUERIES:
            http, store = [], []
            params = dict(p.split("=") for p in q.split("?")[1].split("&"))
            query = gallery.Query(
                limit=int(params.get("limit", 60)), offset=int(params.get("offset", 0)),
                model=params.get("model"), source=params.get("source"), tag=params.get("tag"),
                search=params.get("q"), sort=params.get("sort", "new"),  # type: ignore[arg-type]
                min_rating=float(params["min_rating"]) if "min_rating" in params else None)
            for _ in range(args.requests):
                t = time.perf_counter()
                res = client.get(q)
                http.append(time.perf_counter() - t)
                assert res.status_code == 200, res.text
                t = time.perf_counter()
                gallery.list_items(conn, query)
                store.append(time.perf_counter() - t)
            p50, p95 = percentiles(http)
            worst = max(worst, p95)
            print(f"{q:52s} {p50:8.1f}ms {p95:8.1f}ms {percentiles(store)[1]:8.1f}ms "
                  f"{p95 / BAR_MS:6.2f}x")
        verdict = "PASS" if worst < BAR_MS else "FAIL"
        print(f"worst http p95 {worst:.1f} ms = {worst / BAR_MS:.2f} of the {BAR_MS:.0f} ms bar: "
              f"{verdict}")


if __name__ == "__main__":
    main()
