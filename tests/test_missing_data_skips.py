"""A test whose catalogue or PostgreSQL server is missing skips, saying where it looked and how to provide it: the
brief asks the suite to run where the shared datasets are absent, and ``make test`` lists every skip's reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import dataset_dir


def test_a_missing_dataset_skips_naming_where_it_looked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PRODCAT_DATASETS", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match=f"dataset 'flipkart' not found at {tmp_path / 'flipkart'}"):
        dataset_dir("flipkart")


def test_an_unconfigured_postgresql_skips_saying_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.delenv("PRODCAT_TEST_POSTGRES_URL", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"PostgreSQL not configured: run .*scripts/postgres\.sh"):
        request.getfixturevalue("postgres_url")
