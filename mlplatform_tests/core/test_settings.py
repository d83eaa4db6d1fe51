"""Settings read from the environment: a bad value is an error naming the variable."""

from __future__ import annotations

import pytest

from mlplatform.core import settings


@pytest.mark.parametrize(("value", "expected"), [(None, None), ("", None), ("65536", 65536)])
def test_max_body_bytes_is_read_at_call_time(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: int | None
) -> None:
    if value is None:
        monkeypatch.delenv("MLPLATFORM_MAX_BODY_BYTES", raising=False)
    else:
        monkeypatch.setenv("MLPLATFORM_MAX_BODY_BYTES", value)
    assert settings.max_body_bytes() == expected


@pytest.mark.parametrize("value", ["0", "-5", "4MB", "1.5"])
def test_a_bad_max_body_bytes_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MLPLATFORM_MAX_BODY_BYTES", value)
    with pytest.raises(
        ValueError, match=f"MLPLATFORM_MAX_BODY_BYTES must be a positive number of bytes, not '{value}'"
    ):
        settings.max_body_bytes()
