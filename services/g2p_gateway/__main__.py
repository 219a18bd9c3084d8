"""`python -m services.g2p_gateway`: one G2P Connect partner's gateway until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from services.g2p_gateway import api
from services.g2p_gateway.config import Settings
from services.g2p_gateway.gateway import Gateway
from shared import problems
from shared.auth import Authenticator


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway app: callbacks served, consumer and pump running during its lifespan."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway = Gateway(settings)
        app.state.gateway = gateway
        stop = asyncio.Event()
        await gateway.start()
        tasks = [asyncio.create_task(gateway.consume(stop)),
                 asyncio.create_task(gateway.pump(stop)),
                 asyncio.create_task(gateway.prune_loop(stop))]
        for task in tasks:
            task.add_done_callback(gateway.task_ended)
        try:
            yield
        finally:
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await gateway.stop()

    app = FastAPI(title="Every Door G2P Connect gateway", version="1.0.0", lifespan=lifespan,
                  description="Turns disbursement instructions into G2P Connect `/disburse` "
                              "requests and the partner's signed callbacks into signed bank "
                              "statuses (docs/bank-partner.md).")
    app.state.authenticator = Authenticator.from_settings(settings.platform,
                                                          audience=settings.audience)
    problems.install(app)
    app.include_router(api.router)
    app.include_router(api.ops)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = Settings()
    uvicorn.run(create_app(s), host=s.host, port=s.port, log_level="warning")
