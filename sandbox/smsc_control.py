"""The SMSC's control endpoints under /_sandbox/smpp/ and its start with the sandbox's event loop."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.smsc import Smsc


def add_smsc(app: web.Application, smsc: Smsc, host: str, port: int) -> None:
    async def state(_request: web.Request) -> web.Response:
        return web.json_response(smsc.state())

    async def body(request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text='{"error": "body must be JSON"}', content_type="application/json") from None
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text='{"error": "body must be an object"}', content_type="application/json")
        return data

    def refused(exc: Exception) -> web.Response:
        return web.json_response({"error": str(exc)}, status=400)

    async def faults(request: web.Request) -> web.Response:
        try:
            smsc.set_faults(await body(request))
        except (ValueError, TypeError) as exc:
            return refused(exc)
        return web.json_response(smsc.state()["faults"])

    async def script(request: web.Request) -> web.Response:
        data = await body(request)
        try:
            smsc.set_script(str(data.get("to", "")), [str(v) for v in data.get("outcomes", [])])
        except ValueError as exc:
            return refused(exc)
        return web.json_response({"ok": True})

    async def refuse(request: web.Request) -> web.Response:
        import time

        seconds = float((await body(request)).get("seconds", 0))
        smsc.refuse_until = time.monotonic() + seconds
        return web.json_response({"refusing": seconds})

    async def inbound(request: web.Request) -> web.Response:
        data = await body(request)
        key = smsc.inbound(str(data.get("from", "")), str(data.get("to", "")), str(data.get("text", "")))
        return web.json_response({"key": key})

    async def drop(_request: web.Request) -> web.Response:
        return web.json_response({"dropped": smsc.drop_sessions()})

    async def reset(_request: web.Request) -> web.Response:
        smsc.reset()
        return web.json_response({"ok": True})

    app.router.add_get("/_sandbox/smpp/state", state)
    app.router.add_post("/_sandbox/smpp/faults", faults)
    app.router.add_post("/_sandbox/smpp/script", script)
    app.router.add_post("/_sandbox/smpp/refuse", refuse)
    app.router.add_post("/_sandbox/smpp/inbound", inbound)
    app.router.add_post("/_sandbox/smpp/drop", drop)
    app.router.add_post("/_sandbox/smpp/reset", reset)

    async def start(_app: web.Application) -> None:
        await smsc.start(host, port)

    async def stop(_app: web.Application) -> None:
        await smsc.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
