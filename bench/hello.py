"""Bare ASGI app (no framework): the throughput ceiling for the benchmark.

Answers every HTTP request with 200 {"hello":"world"} as application/json.
Run with: python -m uvicorn bench.hello:app --port 8000
"""

_BODY = b'{"hello":"world"}'
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(_BODY)).encode("ascii")),
    ],
}
_RESPONSE = {"type": "http.response.body", "body": _BODY}


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if kind != "http":
        return
    # Drain the request body so keep-alive connections stay in sync.
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send(_START)
    await send(_RESPONSE)
