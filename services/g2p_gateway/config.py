"""Gateway settings (env prefix G2P_GATEWAY_): one gateway process per G2P Connect partner."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import PROJECT_ROOT, PlatformSettings, service_audience

# The reference partner's sandbox key pair (public in the repository: dev mode only). The gateway
# signs the statuses it publishes for the partner, and its /disburse requests, with the private
# half; the sandbox bank signs its callbacks with the same key, verified with the public half.
SANDBOX_SIGNING_KEY_FILE = PROJECT_ROOT / "services/bank_partner/sandbox-signing-key.private.jwk.json"
SANDBOX_PUBLIC_KEYS_FILE = PROJECT_ROOT / "services/disbursement/sandbox-partner-keys.jwks.json"


class Settings(BaseSettings):
    """Who the partner is, where it answers, and how the gateway batches, signs and polls."""

    model_config = SettingsConfigDict(env_prefix="G2P_GATEWAY_", extra="ignore")

    # Partner code: topics disbursement.instructions.<partner> and disbursement.status.<partner>.
    partner: str = "g2pbank"
    # The bank's G2P Connect base URL (POST {partner_url}/disburse, /disburse/txn/status).
    partner_url: str = "http://127.0.0.1:8007"
    # header.receiver_id of our requests, and the sender_id its callbacks must carry.
    partner_id: str = ""
    # header.sender_id of our requests (the id the bank registered us under).
    sender_id: str = "everydoor"
    host: str = "127.0.0.1"
    port: int = 8006
    # header.sender_uri: the base URL the bank calls back (…/on-disburse, …/disburse/txn/on-status).
    callback_url: str = ""
    group_id: str = ""
    # Private Ed25519 JWK (with kid): signs our requests and the statuses published for the
    # partner. Its public half must be in disbursement's key set for the partner
    # (DISBURSEMENT_PARTNER_KEYS); the sandbox key only in dev mode.
    signing_key_file: Path = SANDBOX_SIGNING_KEY_FILE
    # JWKS of the bank's public keys: its callbacks' Signature must verify with one of them.
    partner_keys_file: Path = SANDBOX_PUBLIC_KEYS_FILE
    allow_sandbox_keys: bool = False
    # Idempotency state (JSON written atomically); in memory if unset.
    state_file: Path | None = None
    batch_size: int = Field(default=100, ge=1, le=10000)
    batch_linger_s: float = Field(default=0.2, ge=0)
    # An instruction with no news this long after its request (or last callback) is polled.
    callback_timeout_s: float = Field(default=30.0, gt=0)
    poll_interval_s: float = Field(default=5.0, gt=0)
    # Financial addresses: the programme's holding account, and the payee's token at the bank.
    payer_fa: str = ""
    payee_fa_format: str = "token:{beneficiary_reference}@{partner}"
    request_timeout_s: float = 10.0
    # Finished transactions (every instruction settled, rejected or failed) are forgotten, with
    # their instructions, this many days after their last status. Keep it longer than
    # disbursement may deliver an instruction again (the instruction topic's retention, its
    # outbox's OUTBOX_DAYS for a republish): a forgotten instruction seen again would be sent
    # again (the bank refuses the repeat by reference_id, but the noise is avoidable).
    retention_days: float = Field(default=90.0, gt=0)
    prune_interval_s: float = Field(default=3600.0, gt=0)
    # Polls of a transaction the bank leaves unanswered (no callback at all) before the gateway
    # stops and marks it `unanswered` for an operator (GET /v1/ops/g2p/transactions).
    max_unanswered_polls: int = Field(default=20, ge=1)
    # The operator audit log (JSON lines, appended): next to the state file unless set; in
    # memory when neither is set.
    audit_file: Path | None = None
    # Audience the operators' tokens must carry (everydoor-g2p-gateway unless set).
    jwt_audience: str | None = None
    platform: PlatformSettings = Field(default_factory=PlatformSettings)

    @property
    def audience(self) -> str:
        """The token audience of the gateway's operator endpoints."""
        return self.jwt_audience or service_audience("g2p-gateway")

    @model_validator(mode="after")
    def _defaults_and_keys(self) -> Settings:
        self.partner_id = self.partner_id or self.partner
        self.callback_url = (self.callback_url or f"http://{self.host}:{self.port}").rstrip("/")
        self.partner_url = self.partner_url.rstrip("/")
        self.group_id = self.group_id or f"g2p-gateway.{self.partner}"
        self.payer_fa = self.payer_fa or f"account:everydoor-ntp@{self.partner}"
        if self.audit_file is None and self.state_file is not None:
            self.audit_file = self.state_file.with_suffix(".audit.jsonl")
        sandbox = (self.signing_key_file.resolve() == SANDBOX_SIGNING_KEY_FILE.resolve()
                   or self.partner_keys_file.resolve() == SANDBOX_PUBLIC_KEYS_FILE.resolve())
        if sandbox and not (self.platform.everydoor_dev_mode or self.allow_sandbox_keys):
            raise ValueError(
                "G2P_GATEWAY_SIGNING_KEY_FILE and G2P_GATEWAY_PARTNER_KEYS_FILE are the public "
                "sandbox keys: outside dev mode give the gateway its own key (registered in "
                "DISBURSEMENT_PARTNER_KEYS for the partner) and the bank's public keys, or set "
                "G2P_GATEWAY_ALLOW_SANDBOX_KEYS=true for a demo with the sandbox bank")
        return self
