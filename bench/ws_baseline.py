"""The live_fanout baseline: a minimal websockets server in a process of its own.

``python -m bench.ws_baseline PORT``. Every connection gets a hello frame; a connection
whose path is ``/control`` says ``go`` and the server then sends one distinct
``notification.created`` frame to every other connection in a plain loop of ``send()``,
and answers ``done``. Bound to 127.0.0.1; exits after an hour at most.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import uuid

from websockets.asyncio.server import ServerConnection, serve

HOST = "127.0.0.1"
LIFETIME = 3600.0


def _frame(seq: int, user: int) -> str:
    return json.dumps(
        {
            "type": "notification.created",
            "seq": seq,
            "data": {
                "id": str(uuid.uuid4()),
                "recipient_id": f"u{user:05d}",
                "title": "Your application was received",
                "body": "Thank you for applying.",
                "category": "general",
                "read_at": None,
            },
        }
    )


async def main(port: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
    sockets: list[ServerConnection] = []
    seq = 0

    async def handler(conn: ServerConnection) -> None:
        nonlocal seq
        path = conn.request.path if conn.request else "/"
        if path == "/control":
            async for message in conn:
                if message != "go":
                    continue
                seq += 1
                for user, target in enumerate(list(sockets)):
                    await target.send(_frame(seq, user))
                await conn.send("done")
            return
        sockets.append(conn)
        try:
            await conn.send(json.dumps({"type": "hello", "seq": 0, "data": {}}))
            await conn.wait_closed()
        finally:
            sockets.remove(conn)

    async with serve(handler, HOST, port, ping_interval=None, max_queue=64):
        await asyncio.sleep(LIFETIME)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
