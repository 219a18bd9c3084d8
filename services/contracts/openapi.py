"""Each service's OpenAPI document, from its FastAPI app (built, never started: no connection)."""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import FastAPI

from shared.processes import SERVICES
from shared.runtime import create_app
from shared.settings import PlatformSettings

# Creating the app validates the settings' keys; fixed throwaway ones keep the generator away
# from the dev key file and from any real secret. Nothing is signed, verified or fetched.
_DOC_KEY = "openapi-generation-only-" + "0" * 24
_DOC_JWKS_URL = "https://openapi-generation.invalid/jwks"


def app(service: str) -> FastAPI:
    """One service's FastAPI app, built with throwaway keys and never started."""
    main = importlib.import_module(f"services.{service}.__main__")
    settings_cls = importlib.import_module(f"services.{service}.config").Settings
    keys: dict[str, object] = {name: _DOC_KEY for name in settings_cls.secret_fields}
    if "allow_sandbox_partner_key" in settings_cls.model_fields:  # no partner key is read either
        keys["allow_sandbox_partner_key"] = True
    settings = settings_cls(platform=PlatformSettings(everydoor_jwks_url=_DOC_JWKS_URL,
                                                      everydoor_dev_mode=False), **keys)
    return create_app(main.spec(settings))


def document(service: str) -> dict[str, Any]:
    """`app.openapi()` of one service."""
    return app(service).openapi()


def gateway_document() -> dict[str, Any]:
    """The G2P Connect gateway's document (its partner callbacks; not one of the four services,
    no bearer tokens: the partner's signature authenticates)."""
    from services.g2p_gateway.__main__ import create_app as gateway_app
    from services.g2p_gateway.config import Settings as GatewaySettings

    return gateway_app(GatewaySettings(allow_sandbox_keys=True)).openapi()


def documents() -> dict[str, dict[str, Any]]:
    """The four services' documents and the gateway's, by name."""
    return {**{service: document(service) for service in SERVICES},
            "g2p_gateway": gateway_document()}
