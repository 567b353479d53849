#!/usr/bin/env python3
"""Where an idle WebSocket's memory goes, stage by stage.

    python3 bench/ws_stages.py --port 18082 --pid SERVER_PID --sockets 10000 \
        --password ADMIN_PASSWORD [--conversation ID]

Opens the sockets in three steps and reads the server's resident memory
after each (2 s settle): the upgraded connection alone, then after
`connection_init` (authenticated, acknowledged), then after one
`lockChanged` subscription each. Prints one JSON object with the growth per
socket of each step. A plain-asyncio client (no third-party packages), so
it runs anywhere Python 3 does.
"""

import argparse
import asyncio
import base64
import json
import os
import struct
import time
import urllib.request


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def frame(text):
    payload = text.encode()
    mask = os.urandom(4)
    head = bytes([0x81])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader):
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack(">H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack(">Q", await reader.readexactly(8))
    return b0 & 0x0F, await reader.readexactly(n)


class Socket:
    async def open(self, host, port):
        self.reader, self.writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            (
                f"GET /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    async def send(self, msg):
        self.writer.write(frame(json.dumps(msg)))
        await self.writer.drain()

    async def next_text(self):
        while True:
            op, payload = await read_frame(self.reader)
            if op == 1:
                return json.loads(payload)
            if op == 8:
                raise RuntimeError(f"closed: {payload!r}")

    async def init(self, token):
        await self.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        ack = await self.next_text()
        assert ack["type"] == "connection_ack", ack

    async def subscribe(self, conversation):
        query = "subscription($id: ID!) { lockChanged(conversationId: $id) { conversationId at } }"
        await self.send(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"id": conversation}}}
        )


def login(base, email, password):
    body = json.dumps(
        {
            "query": "mutation($e:String!,$p:String!){ login(email:$e,password:$p){ accessToken } }",
            "variables": {"e": email, "p": password},
        }
    ).encode()
    req = urllib.request.Request(
        f"{base}/graphql", body, {"content-type": "application/json", "accept": "application/json"}
    )
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)["data"]["login"]["accessToken"]


async def in_batches(items, step, width=100):
    for i in range(0, len(items), width):
        await asyncio.gather(*(step(s) for s in items[i : i + width]))


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--sockets", type=int, default=10000)
    p.add_argument("--email", default="admin@example.com")
    p.add_argument("--password", required=True)
    p.add_argument("--conversation", default="1")
    a = p.parse_args()
    token = login(f"http://{a.host}:{a.port}", a.email, a.password)
    sockets = [Socket() for _ in range(a.sockets)]
    rss = {"start": rss_kib(a.pid)}
    started = time.time()
    await in_batches(sockets, lambda s: s.open(a.host, a.port))
    await asyncio.sleep(2)
    rss["upgraded"] = rss_kib(a.pid)
    await in_batches(sockets, lambda s: s.init(token))
    await asyncio.sleep(2)
    rss["initialised"] = rss_kib(a.pid)
    await in_batches(sockets, lambda s: s.subscribe(a.conversation))
    await asyncio.sleep(2)
    rss["subscribed"] = rss_kib(a.pid)
    per = lambda b, e: round((rss[e] - rss[b]) * 1024 / a.sockets)
    print(
        json.dumps(
            {
                "sockets": a.sockets,
                "seconds": round(time.time() - started, 1),
                "rss_kib": rss,
                "bytes_per_socket": {
                    "upgrade": per("start", "upgraded"),
                    "connection_init": per("upgraded", "initialised"),
                    "subscription": per("initialised", "subscribed"),
                    "total": per("start", "subscribed"),
                },
            }
        )
    )
    for s in sockets:
        s.writer.close()


if __name__ == "__main__":
    asyncio.run(main())
