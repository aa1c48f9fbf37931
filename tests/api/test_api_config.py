"""The ``api:`` configuration model: strict, documented, with safe defaults."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from vigil.config.api_model import ApiConfig, ApiTlsConfig


@pytest.mark.parametrize("model", [ApiConfig, ApiTlsConfig])
def test_every_field_documented_and_unknown_keys_refused(model: type[BaseModel]) -> None:
    for name, f in model.model_fields.items():
        assert f.description, f"{model.__name__}.{name} has no description"
    with pytest.raises(ValidationError):
        model.model_validate({"no_such_option": 1})


def test_safe_defaults() -> None:
    cfg = ApiConfig()
    assert cfg.host == "127.0.0.1" and cfg.tls.enabled and cfg.trusted_proxies == []
    assert cfg.max_body_bytes == 64 * 1024


def test_units_and_validation() -> None:
    cfg = ApiConfig.model_validate(
        {"session_idle_timeout": "30m", "max_body_bytes": "128KiB", "token_max_expiry": "400d"}
    )
    assert cfg.session_idle_timeout == 1800 and cfg.max_body_bytes == 131072
    for bad in (
        {"trusted_proxies": ["not-an-ip"]},
        {"allowed_origins": ["nvr.example.org"]},
        {"session_idle_timeout": "13h"},  # longer than session_max_age
        {"tls": {"cert_file": "/x.pem"}},  # key missing
        {"port": 70000},
    ):
        with pytest.raises(ValidationError):
            ApiConfig.model_validate(bad)
