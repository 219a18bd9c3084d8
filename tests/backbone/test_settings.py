"""Outside dev mode the shipped development keys are refused at start-up, and so are topics
created without replicas."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.disbursement.config import Settings as DisbursementSettings
from services.supervision.config import Settings as SupervisionSettings
from shared.infra import ensure_topics, topic_configs
from shared.settings import PlatformSettings

PRODUCTION = PlatformSettings(everydoor_dev_mode=False,
                              everydoor_jwks_url="https://idp.example/realms/everydoor/certs")


# Disbursement also needs each partner's status keys outside dev mode (tests/disbursement).
OTHERWISE_COMPLETE = {DisbursementSettings: {"partner_keys": {"vbsp": "vbsp.jwks.json"}}}


@pytest.mark.parametrize(("cls", "field"), [(SupervisionSettings, "rate_limit_key"),
                                            (SupervisionSettings, "reference_key"),
                                            (DisbursementSettings, "beneficiary_reference_key")])
def test_dev_keys_are_refused_outside_dev_mode_and_real_ones_accepted(cls, field):
    rest = OTHERWISE_COMPLETE.get(cls, {}) | {other: "y" * 32 for other in cls.secret_fields
                                              if other != field}
    with pytest.raises(ValidationError, match=field.upper()):
        cls(platform=PRODUCTION, **rest)
    with pytest.raises(ValidationError):
        cls(platform=PRODUCTION, **rest, **{field: "CHANGE_ME"})
    assert getattr(cls(platform=PRODUCTION, **rest, **{field: "x" * 32}), field) == "x" * 32
    assert getattr(cls(), field).startswith("everydoor-dev-")  # dev mode: the shipped key is fine


def test_replication_settings_come_from_the_standard_variables(monkeypatch):
    assert (PlatformSettings().kafka_topic_replication_factor,
            PlatformSettings().kafka_min_insync_replicas) == (1, 1)
    monkeypatch.setenv("KAFKA_TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "2")
    settings = PlatformSettings()
    assert (settings.kafka_topic_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(ValidationError, match="KAFKA_MIN_INSYNC_REPLICAS"):
        PlatformSettings()


def test_replicas_are_required_outside_dev_mode_unless_the_cluster_has_one_broker_on_purpose():
    assert PlatformSettings().kafka_require_replication is False  # dev mode
    assert PRODUCTION.kafka_require_replication is True
    single = PRODUCTION.model_copy(update={"kafka_allow_unreplicated_topics": True})
    assert single.kafka_require_replication is False


def test_a_topic_with_one_replica_is_refused_outside_dev_mode_naming_the_setting():
    with pytest.raises(ValueError, match="KAFKA_TOPIC_REPLICATION_FACTOR=3"):
        topic_configs(replication_factor=1, min_insync_replicas=1, require_replication=True)
    assert topic_configs(replication_factor=1, min_insync_replicas=1,
                         require_replication=False) == {}  # dev mode: the embedded broker
    assert topic_configs(replication_factor=3, min_insync_replicas=2,
                         require_replication=True) == {"min.insync.replicas": "2"}
    with pytest.raises(ValueError, match="KAFKA_MIN_INSYNC_REPLICAS"):
        topic_configs(replication_factor=2, min_insync_replicas=3, require_replication=True)


async def test_ensure_topics_refuses_before_it_connects():
    # Nothing listens on port 1: had it connected first, this would fail differently.
    with pytest.raises(ValueError, match="EVERYDOOR_DEV_MODE=false"):
        await ensure_topics("127.0.0.1:1", ["registry.households"], 6, replication_factor=1,
                            require_replication=True)


@pytest.mark.parametrize("cls", [DisbursementSettings, SupervisionSettings])
def test_each_service_requires_its_own_token_audience(cls, monkeypatch):
    settings = cls()
    assert settings.audience == f"everydoor-{settings.service_name}"
    prefix = str(cls.model_config["env_prefix"])
    monkeypatch.setenv(f"{prefix}JWT_AUDIENCE", "https://api.example.gov.vn/x")
    assert cls().audience == "https://api.example.gov.vn/x"
