"""Load test of the studio on loopback: 200 concurrent gallery readers and 20 job submitters
for 60 s against ``muselab studio`` (a real uvicorn process on 127.0.0.1, its own temporary
data home, a gallery seeded with 2,000 items). Prints p50/p95/p99 latency, throughput and
errors per kind of request, as JSON. Bounded: fixed duration, fixed client counts, the
server is stopped and the temporary folder removed at the end.

    python benchmarks/loadtest.py [--seconds 60] [--readers 200] [--submitters 20]
                                  [--items 2000] [--worker] [--out result.json]

Readers loop over the gallery page's queries (list pages, search, one item). Each
submitter queues a poem job every ``--submit-every`` seconds (default 4 s, so 20 of them
stay within the studio's default rate limit of 600 changes a minute per client; every
client here is 127.0.0.1). Without ``--worker`` the jobs only queue (the API is measured,
not the poet); with it the job worker runs too, competing for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from gallery_list import seed  # benchmarks/gallery_list.py: the same seeded gallery

READS = ["/api/gallery?limit=60", "/api/gallery?limit=60&offset={offset}",
         "/api/gallery?limit=60&q=sunset", "/api/gallery?limit=60&sort=rating",
         "/api/gallery/{item}"]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_studio(home: Path, port: int, worker: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MUSELAB_HOME": str(home), "MUSELAB_RUNS": str(home / "runs")}
    for name in ("MUSELAB_DB", "MUSELAB_MEDIA", "MUSELAB_TOKEN"):
        env.pop(name, None)
    args = [sys.executable, "-c", "from muselab.cli import main; main()", "studio", "--port",
            str(port), *([] if worker else ["--no-worker"])]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_up(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"the studio exited: {proc.stderr.read().decode()[-2000:]}"
                             if proc.stderr else "the studio exited")
        try:
            if (await client.get("/api/jobs?limit=1")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the studio did not answer within 120 s")


class Recorder:
    """Latencies (s) and outcomes per kind of request."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    async def call(self, kind: str, send: Any, ok: int) -> None:
        t0 = time.perf_counter()
        try:
            res = await send()
            outcome = None if res.status_code == ok else f"HTTP {res.status_code}"
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        self.latency[kind].append(time.perf_counter() - t0)
        if outcome:
            self.errors[kind][outcome] += 1

    def summary(self, seconds: float) -> dict[str, Any]:
        out = {}
        for kind, values in self.latency.items():
            ms = np.asarray(values) * 1000
            errors = dict(self.errors[kind])
            out[kind] = {"requests": len(values), "per_s": round(len(values) / seconds, 1),
                         "p50_ms": round(float(np.percentile(ms, 50)), 1),
                         "p95_ms": round(float(np.percentile(ms, 95)), 1),
                         "p99_ms": round(float(np.percentile(ms, 99)), 1),
                         "max_ms": round(float(ms.max()), 1),
                         "errors": sum(errors.values()), "error_kinds": errors}
        return out


async def reader(client: httpx.AsyncClient, rec: Recorder, end: float, items: int,
                 rng: random.Random) -> None:
    while time.monotonic() < end:
        path = rng.choice(READS).format(offset=rng.randrange(items), item=rng.randrange(1, items))
        await rec.call("gallery read", lambda p=path: client.get(p), 200)


async def submitter(client: httpx.AsyncClient, rec: Recorder, end: float, every: float,
                    rng: random.Random) -> None:
    await asyncio.sleep(rng.uniform(0, every))  # spread the first submissions
    while time.monotonic() < end:
        t0 = time.monotonic()
        body = {"kind": "poem", "params": {"seed": rng.randrange(2**31), "n": 1}}
        await rec.call("job submit", lambda b=body: client.post("/api/jobs", json=b), 201)
        await asyncio.sleep(max(0.0, every - (time.monotonic() - t0)))


async def run(args: argparse.Namespace, base: str, proc: subprocess.Popen[bytes]
              ) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.readers + args.submitters + 4)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await wait_up(client, proc)
        rec, rng = Recorder(), random.Random(0)
        cpu0 = cpu_seconds(proc.pid)
        t0 = time.monotonic()
        end = t0 + args.seconds
        tasks = [reader(client, rec, end, args.items, random.Random(rng.random()))
                 for _ in range(args.readers)]
        tasks += [submitter(client, rec, end, args.submit_every, random.Random(rng.random()))
                  for _ in range(args.submitters)]
        await asyncio.gather(*tasks)
        seconds = time.monotonic() - t0
        cpu1 = cpu_seconds(proc.pid)
        queued = (await client.get("/api/jobs?limit=500")).json()
    served = sum(len(v) for v in rec.latency.values())
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    result = {"seconds": round(seconds, 1), "readers": args.readers,
              "submitters": args.submitters, "items": args.items, "worker": args.worker,
              "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
              "requests": rec.summary(seconds), "jobs_in_queue_after": len(queued),
              # what the server itself spent: capacity on a free core ~ 1000 / this
              "server_cpu_s": server_cpu and round(server_cpu, 1),
              "server_cpu_ms_per_request": server_cpu and round(1000 * server_cpu / served, 2)}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--readers", type=int, default=200)
    p.add_argument("--submitters", type=int, default=20)
    p.add_argument("--submit-every", type=float, default=4.0)
    p.add_argument("--items", type=int, default=2000)
    p.add_argument("--worker", action="store_true", help="also run the job worker")
    p.add_argument("--out", type=Path, help="also write the JSON result here")
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="muselab-loadtest-"))
    os.environ["MUSELAB_HOME"] = str(home)
    seed(home / "studio.sqlite3", args.items)
    port = _free_port()
    proc = start_studio(home, port, args.worker)
    try:
        result = asyncio.run(run(args, f"http://127.0.0.1:{port}", proc))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(home, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
