"""`python -m services.bank_partner`: run the reference partner until SIGTERM/SIGINT (`--g2p` or
BANK_PARTNER_KIND=g2p-connect: the G2P Connect sandbox bank over HTTP instead of Kafka)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

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


REFUSAL = ("the reference partner is a sandbox bank (it settles every instruction by itself and "
           "signs with a public key): set BANK_PARTNER_SANDBOX=true to run it, never where real "
           "money moves")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = PartnerConfig.from_env()
    if not config.sandbox:
        sys.exit(REFUSAL)
    kind = os.environ.get("BANK_PARTNER_KIND", "kafka")
    if "--g2p" in sys.argv[1:] or kind == "g2p-connect":
        from services.bank_partner import g2p

        g2p.serve(config)
    elif kind != "kafka":
        sys.exit(f"BANK_PARTNER_KIND={kind}: kafka or g2p-connect")
    else:
        asyncio.run(main(config))
