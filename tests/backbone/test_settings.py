"""Outside dev mode the shipped development keys are refused at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.disbursement.config import Settings as DisbursementSettings
from services.supervision.config import Settings as SupervisionSettings
from shared.settings import PlatformSettings

PRODUCTION = PlatformSettings(everydoor_dev_mode=False, everydoor_jwt_secret="j" * 40)


@pytest.mark.parametrize(("cls", "field"), [(SupervisionSettings, "rate_limit_key"),
                                            (DisbursementSettings, "beneficiary_reference_key")])
def test_dev_keys_are_refused_outside_dev_mode_and_real_ones_accepted(cls, field):
    with pytest.raises(ValidationError, match=field.upper()):
        cls(platform=PRODUCTION)
    with pytest.raises(ValidationError):
        cls(platform=PRODUCTION, **{field: "CHANGE_ME"})
    assert getattr(cls(platform=PRODUCTION, **{field: "x" * 32}), field) == "x" * 32
    assert getattr(cls(), field).startswith("everydoor-dev-")  # dev mode: the shipped key is fine
