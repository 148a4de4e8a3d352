"""A test whose catalogue or PostgreSQL server is missing skips, saying where it looked and how to provide it: the
brief asks the suite to run where the shared datasets are absent, and ``make test`` lists every skip's reason. CI
sets ``CI=true`` on machines without them too, so the skip is the same with it set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import dataset_dir

WITH_AND_WITHOUT_CI = pytest.mark.parametrize("ci", ["true", ""])


@WITH_AND_WITHOUT_CI
def test_a_missing_dataset_skips_naming_where_it_looked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str
) -> None:
    monkeypatch.setenv("PRODCAT_DATASETS", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    where = re.escape(str(tmp_path / "flipkart"))
    with pytest.raises(pytest.skip.Exception, match=f"dataset 'flipkart' not found at {where}"):
        dataset_dir("flipkart")


@WITH_AND_WITHOUT_CI
def test_an_unconfigured_postgresql_skips_saying_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, ci: str
) -> None:
    monkeypatch.delenv("PRODCAT_TEST_POSTGRES_URL", raising=False)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match=r"PostgreSQL not configured: run .*scripts/postgres\.sh"):
        request.getfixturevalue("postgres_url")
