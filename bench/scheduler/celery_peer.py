"""The Celery peer of bench/scheduler: N no-op tasks dispatched through a
local redis broker to a worker with two processes, results collected.

  python3 celery_peer.py REDIS_PORT N      (a worker must be running)
  celery -A celery_peer worker ...         (what run.sh starts)

Prints the milliseconds from the first submission to the last result."""
import os
import sys
import time

from celery import Celery

PORT = os.environ.get("BENCH_REDIS_PORT", "6390")
app = Celery("celery_peer", broker=f"redis://127.0.0.1:{PORT}/0",
             backend=f"redis://127.0.0.1:{PORT}/1")
app.conf.worker_prefetch_multiplier = 64
app.conf.result_expires = 600


@app.task
def noop(i):
    return i


def main():
    n = int(sys.argv[1])
    # One round trip first: the worker is up and connected.
    noop.delay(-1).get(timeout=120)
    start = time.monotonic()
    results = [noop.delay(i) for i in range(n)]
    for r in results:
        r.get(timeout=600)
    ms = (time.monotonic() - start) * 1000
    print(f"{ms:.0f}")


if __name__ == "__main__":
    main()
