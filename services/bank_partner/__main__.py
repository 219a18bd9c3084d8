"""`python -m services.bank_partner`: run the reference partner until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from services.bank_partner.config import PartnerConfig
from services.bank_partner.partner import Partner


async def main(config: PartnerConfig) -> None:
    """Run the partner; a signal finishes the current batch, saves state and leaves the group."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    partner = Partner(config)
    server = await partner.serve_health(config.health_port) if config.health_port else None
    try:
        await partner.run(stop)
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(PartnerConfig.from_env()))
