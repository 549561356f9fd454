"""The reference stack of bench/api: FastAPI on uvicorn serving one table
from SQLite, with a Redis TTL cache in front of every query -- the way the
small-business team built their data API. The same filters as Sluice's
dataset API (col=v, col__gte=v, ..., _limit), JSON rows as objects.

  BENCH_SQLITE=/path/db.sqlite BENCH_REDIS_PORT=6390 \
    python3 -m uvicorn reference_app:app --workers 2 --port 8001
"""
import json
import os
import sqlite3
import threading

import redis
from fastapi import FastAPI, Request, Response

app = FastAPI()
DB = os.environ["BENCH_SQLITE"]
CACHE = redis.Redis(host="127.0.0.1", port=int(os.environ["BENCH_REDIS_PORT"]))
TTL_SECONDS = 60
OPS = {"": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
LOCAL = threading.local()


def connection():
    conn = getattr(LOCAL, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        LOCAL.conn = conn
        LOCAL.columns = {r[1] for r in conn.execute("PRAGMA table_info(trips)")}
    return conn


@app.get("/data/trips")
def trips(request: Request):
    key = "q:" + request.url.query
    hit = CACHE.get(key)
    if hit is not None:
        return Response(hit, media_type="application/json")
    conn = connection()
    where, args = [], []
    for name, value in request.query_params.items():
        if name == "_limit":
            continue
        column, _, op = name.partition("__")
        if column not in LOCAL.columns or op not in OPS:
            return Response(status_code=400)
        where.append(f'"{column}" {OPS[op]} ?')
        args.append(value)
    limit = min(int(request.query_params.get("_limit", "100")), 10000)
    sql = "SELECT * FROM trips"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id LIMIT ?"
    rows = [dict(r) for r in conn.execute(sql, args + [limit])]
    body = json.dumps({"rows": rows}).encode()
    CACHE.setex(key, TTL_SECONDS, body)
    return Response(body, media_type="application/json")
