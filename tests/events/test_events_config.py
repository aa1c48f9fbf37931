"""The events configuration models: strict, documented, human units."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from vigil.config import events_model as em


def _models() -> list[type[BaseModel]]:
    return [
        em.EventsConfig,
        em.MqttConfig,
        em.MqttTlsConfig,
        em.WebhookConfig,
        em.WebhooksConfig,
    ]


@pytest.mark.parametrize("model", _models())
def test_every_field_is_described_and_extra_is_forbidden(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"


def test_defaults_and_units() -> None:
    cfg = em.EventsConfig.model_validate(
        {"pre_roll": "10s", "post_roll": 2, "retention": "7d", "open_hold": "2h"}
    )
    assert (cfg.pre_roll, cfg.post_roll, cfg.retention, cfg.open_hold) == (
        10,
        2,
        7 * 86400,
        7200,
    )
    default = em.EventsConfig()
    assert default.retention == 30 * 86400 and default.mqtt is None
    assert default.webhooks.endpoints == []
    with pytest.raises(ValidationError):
        em.EventsConfig.model_validate({"post_rol": 5})
    with pytest.raises(ValidationError):
        em.EventsConfig.model_validate({"pre_roll": "-5s"})
