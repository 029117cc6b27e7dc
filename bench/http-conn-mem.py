#!/usr/bin/env python3
"""http-conn-mem.py - what one HTTPS connection costs the server, by what it holds.

Opens --conns connections to 127.0.0.1:--port over TLS (ALPN http/1.1) in
--steps steps and reads the server's memory (/proc/PID/smaps_rollup of --pid)
after each step; the slope is KiB per connection. --mode says what each
connection holds:
  tls       the handshake done, nothing sent
  idle      one request answered (OPTIONS of --path), kept alive
  waiting   a request head sent whose body never comes (Content-Length 10)
Prints one JSON object. Talks to 127.0.0.1 only; bounded in count and time.
"""
import argparse
import asyncio
import json
import ssl
import time


def mem(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("Rss", "Pss"):
                out[k.lower()] = int(rest.split()[0])
    return out


async def one(a, ctx, held):
    r, w = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", a.port, ssl=ctx, server_hostname="localhost"), 30)
    if a.mode == "idle":
        w.write(f"OPTIONS {a.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        if length:
            await r.readexactly(length)
    elif a.mode == "waiting":
        w.write(f"POST {a.path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n".encode())
        await w.drain()
    held.append((r, w))


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--mode", choices=["tls", "idle", "waiting"], default="tls")
    ap.add_argument("--path", default="/Microsoft-Server-ActiveSync")
    a = ap.parse_args()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    held = []
    base = mem(a.pid)
    points = [(0, base["rss"])]
    per = a.conns // a.steps
    for _ in range(a.steps):
        sem = asyncio.Semaphore(100)

        async def guarded():
            async with sem:
                await one(a, ctx, held)

        await asyncio.gather(*(guarded() for _ in range(per)))
        await asyncio.sleep(1.0)
        points.append((len(held), mem(a.pid)["rss"]))
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    slope = sum((p[0] - mx) * (p[1] - my) for p in points) / sum((p[0] - mx) ** 2 for p in points)
    print(json.dumps({"mode": a.mode, "conns": len(held), "base_rss_kib": base["rss"],
                      "points": points, "kib_per_conn": round(slope, 2)}))
    for _, w in held:
        w.close()


asyncio.run(main())
