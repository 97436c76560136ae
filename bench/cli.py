#!/usr/bin/env python3
"""orderflow through its command line, as users run it.

    python3 bench/cli.py [peer|watch|single ...] [--orders N] [--rounds R] [--binary PATH]

Starts one in-memory Temporal dev server, a throwaway PostgreSQL (through
`orderflow dev`, whose own worker polls another queue) and `orderflow
worker` in its own process, then measures (all three by default):

- peer: orderflow against the Temporal Python SDK, alternating, R rounds of
  N orders each. orderflow: `order create --file`, timed from the create
  until every order has ended in the orders table. The peer: a Python SDK
  worker running the seed's four steps as no-op regular activities (the
  SDK's defaults), N workflows started by a Python client 32 at a time, as
  `order create` does, timed until every result.
- watch: `order create --file` of N orders with and without `--watch`,
  alternating, R rounds, each timed until every order has ended.
- single: one order by `order create --watch`, process start to exit
  (COMPLETED), 50 times one after another.
- client: the no-op baseline workflow, start -> result, 50 times one after
  another from the Python SDK's client, then from orderflow's Rust client
  (`orderflow bench`'s single-order run, on the same server), each split
  by the client's clock and the workflow's history: the start call, the
  first workflow task waiting for a poll, the task, on to the close, and
  the close reaching the client.

Prints each round and the medians. Needs `pip install temporalio`, the
Temporal CLI and PostgreSQL's `psql` (`make deps`). See DOCS.md § Benchmark for recorded runs.
"""

import argparse
import asyncio
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker


@activity.defn
async def step(order: dict) -> dict:
    return order


@workflow.defn
class PeerOrderWorkflow:
    @workflow.run
    async def run(self, order: dict) -> dict:
        for _ in range(4):
            order = await workflow.execute_activity(
                step, order, start_to_close_timeout=timedelta(seconds=10)
            )
        return order


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"the Temporal dev server did not listen on {port} within {timeout} s")


def orders_file(directory: str, prefix: str, n: int) -> str:
    orders = [
        {
            "id": f"{prefix}-{i}",
            "customerID": "PEER",
            "totalAmount": "1.00",
            "items": [{"productID": f"PEER-{i % 50}", "quantity": 1, "unitPrice": "1.00"}],
        }
        for i in range(n)
    ]
    path = os.path.join(directory, f"{prefix}.json")
    with open(path, "w") as f:
        json.dump(orders, f)
    return path


def ended(database_url: str, prefix: str) -> int:
    out = subprocess.run(
        ["psql", database_url, "-tAc",
         f"SELECT count(*) FROM orders WHERE order_id LIKE '{prefix}-%' "
         "AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')"],
        capture_output=True, text=True, check=True,
    )
    return int(out.stdout.strip() or 0)


def orderflow_round(binary: str, env: dict, directory: str, n: int, watch: bool = False) -> float:
    prefix = f"PEER-{uuid.uuid4().hex[:8]}"
    path = orders_file(directory, prefix, n)
    started = time.monotonic()
    subprocess.run([binary, "order", "create", "--file", path] + (["--watch"] if watch else []),
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = started + 600
    while ended(env["DATABASE_URL"], prefix) < n:
        if time.monotonic() > deadline:
            sys.exit("orderflow's orders did not all end within 10 minutes")
        time.sleep(0.05)
    return n / (time.monotonic() - started)


async def peer_round(client: Client, queue: str, n: int) -> float:
    prefix = f"PEER-PY-{uuid.uuid4().hex[:8]}"
    gate = asyncio.Semaphore(32)

    async def start(i: int):
        async with gate:
            return await client.start_workflow(
                PeerOrderWorkflow.run, {"id": f"{prefix}-{i}", "totalAmount": "1.00"},
                id=f"{prefix}-{i}", task_queue=queue,
            )

    # At most 100 results awaited at once: each is a history long-poll, and
    # the dev server limits a namespace's concurrent long-polls.
    waits = asyncio.Semaphore(100)

    async def result(handle):
        async with waits:
            return await handle.result()

    started = time.monotonic()
    handles = await asyncio.gather(*(start(i) for i in range(n)))
    await asyncio.gather(*(result(h) for h in handles))
    return n / (time.monotonic() - started)


SEGMENTS = ["startCallMs", "queueMs", "taskMs", "toCloseMs", "resultMs", "totalMs"]


async def python_split(address: str, queue: str, n: int) -> dict:
    from temporalio.api.enums.v1 import EventType

    client = await Client.connect(address)
    rows = []
    for i in range(n + 5):
        order = {"id": f"PY-{uuid.uuid4().hex[:12]}", "customerID": "PEER", "paymentMethod": "card",
                 "totalAmount": "1.00", "currency": "USD",
                 "items": [{"productID": "PEER-0", "quantity": 1, "unitPrice": "1.00"}]}
        before = time.time()
        handle = await client.start_workflow("BaselineWorkflow", order, id=order["id"],
                                             task_queue=queue)
        start_returned = time.time()
        await handle.result()
        after = time.time()
        if i < 5:
            continue  # warm-up
        events = (await handle.fetch_history()).events
        at = lambda kind: next(e.event_time.ToNanoseconds() / 1e9 for e in events if e.event_type == kind)
        scheduled = at(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
        started = at(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
        completed = at(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
        closed = events[-1].event_time.ToNanoseconds() / 1e9
        rows.append([start_returned - before, started - scheduled, completed - started,
                     closed - completed, after - closed, after - before])
    return {name: statistics.median(r[k] for r in rows) * 1000 for k, name in enumerate(SEGMENTS)}


def rust_split(binary: str, env: dict, n: int) -> dict:
    out = subprocess.run([binary, "bench", "--orders", "10", "--rounds", "1", "--hot", "0",
                          "--single", str(n), "--in-flight", "1", "--api-orders", "0",
                          "-o", "json"], env=env, check=True, capture_output=True, text=True)
    report = json.loads(out.stdout)
    return next(s for s in report["singleSplit"] if s["kind"] == "baseline")


async def client(args, env: dict, address: str) -> None:
    n = 50
    rust = rust_split(args.binary, env, n)
    python = await python_split(address, env["ORDERFLOW_TASK_QUEUE"], n)
    print("no-op workflow, start -> result, medians of 50 (ms):")
    print(f"{'client':8} " + " ".join(f"{name[:-2]:>10}" for name in SEGMENTS))
    for label, split in [("Python", python), ("Rust", rust)]:
        print(f"{label:8} " + " ".join(f"{split[name]:10.1f}" for name in SEGMENTS), flush=True)


async def peer(args, env: dict, directory: str, address: str) -> None:
    client = await Client.connect(address)
    queue = "peer-python"
    # Unsandboxed: the workflow lives in this script (__main__), and the
    # sandbox would only make the peer slower.
    async with Worker(client, task_queue=queue, workflows=[PeerOrderWorkflow],
                      activities=[step], workflow_runner=UnsandboxedWorkflowRunner()):
        # Warm both up.
        orderflow_round(args.binary, env, directory, 20)
        await peer_round(client, queue, 20)
        ours, theirs = [], []
        for r in range(args.rounds):
            pair = ["orderflow", "python"] if r % 2 == 0 else ["python", "orderflow"]
            for name in pair:
                if name == "orderflow":
                    ours.append(orderflow_round(args.binary, env, directory, args.orders))
                    rate = ours[-1]
                else:
                    theirs.append(await peer_round(client, queue, args.orders))
                    rate = theirs[-1]
                print(f"round {r + 1}: {name:9} {rate:6.1f} orders/s", flush=True)
    o, p = statistics.median(ours), statistics.median(theirs)
    print(f"median: orderflow {o:.1f} orders/s ({min(ours):.1f}–{max(ours):.1f}), "
          f"Python SDK peer {p:.1f} ({min(theirs):.1f}–{max(theirs):.1f}): {o / p:.2f}×")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", help="peer, watch, single, client (default: all)")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--binary", default="target/release/orderflow")
    args = parser.parse_args()
    args.what = args.what or ["peer", "watch", "single", "client"]
    if unknown := set(args.what) - {"peer", "watch", "single", "client"}:
        parser.error(f"unknown measurement {', '.join(sorted(unknown))}: "
                     "choose peer, watch, single, client")

    directory = tempfile.mkdtemp(prefix="orderflow-peer-")
    port = free_port()
    server = subprocess.Popen(
        ["temporal", "server", "start-dev", "--headless", "--ip", "127.0.0.1",
         "--port", str(port), "--http-port", str(free_port()),
         "--metrics-port", str(free_port()), "--log-level", "error",
         # Configured as the dev servers orderflow starts (DOCS.md §
         # Capacity): one partition per task queue, and the transfer queue
         # read as tasks come.
         "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
         "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
         "--dynamic-config-value", "history.transferProcessorMaxPollRPS=1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    processes = [server]
    try:
        wait_for_port(port)
        address = f"127.0.0.1:{port}"
        env = dict(os.environ, TEMPORAL_ADDRESS=address, ORDERFLOW_TASK_QUEUE="peer-orderflow")
        dev = subprocess.Popen(
            [args.binary, "dev", "-o", "json", "--data-dir", directory,
             "--task-queue", "peer-dev"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        processes.append(dev)
        stack = json.loads(dev.stdout.readline())
        env["DATABASE_URL"] = stack["databaseUrl"]
        catalog = os.path.join(directory, "catalog.json")
        with open(catalog, "w") as f:
            json.dump([{"productID": f"PEER-{i}", "name": "peer", "unitPrice": "1.00",
                        "stock": 1_000_000_000} for i in range(50)], f)
        subprocess.run([args.binary, "product", "import", "--file", catalog], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        worker = subprocess.Popen([args.binary, "worker", "--with-baseline"], env=env,
                                  stderr=subprocess.DEVNULL)
        processes.append(worker)

        if "client" in args.what:
            await client(args, env, address)
        if "peer" in args.what:
            await peer(args, env, directory, address)
        if "watch" in args.what:
            plain, watched = [], []
            for r in range(args.rounds):
                pair = [False, True] if r % 2 == 0 else [True, False]
                for watch in pair:
                    rate = orderflow_round(args.binary, env, directory, args.orders, watch)
                    (watched if watch else plain).append(rate)
                    label = "--watch" if watch else "no watch"
                    print(f"round {r + 1}: {label:9} {rate:6.1f} orders/s", flush=True)
            w, p = statistics.median(watched), statistics.median(plain)
            print(f"median: with --watch {w:.1f} orders/s ({min(watched):.1f}–{max(watched):.1f}), "
                  f"without {p:.1f} ({min(plain):.1f}–{max(plain):.1f}): {w / p - 1:+.1%}")
        if "single" in args.what:
            took = []
            for i in range(50):
                prefix = f"ONE-{uuid.uuid4().hex[:8]}"
                path = orders_file(directory, prefix, 1)
                started = time.monotonic()
                subprocess.run([args.binary, "order", "create", "--watch", "--file", path],
                               env=env, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                took.append((time.monotonic() - started) * 1000)
            took.sort()
            print(f"single order, order create --watch, process start to exit: "
                  f"p50 {statistics.median(took):.1f} ms, p95 {took[math.ceil(len(took) * 0.95) - 1]:.1f} ms, "
                  f"min {took[0]:.1f} ms")
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGINT if process is not processes[-1] else signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        # The throwaway PostgreSQL cluster and the order files.
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
