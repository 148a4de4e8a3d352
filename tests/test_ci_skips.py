"""A test whose catalogue or PostgreSQL server is missing skips on a developer's machine, and fails in CI, which has
both: a skip there would pass a broken set-up green with the data and database tests unrun."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import dataset_dir

IN_CI_OR_NOT = pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)


@IN_CI_OR_NOT
def test_a_missing_dataset_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("PRODCAT_DATASETS", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(BaseException, match="dataset 'flipkart' not found") as stopped:  # a skip is one too
        dataset_dir("flipkart")
    assert stopped.type is outcome


@IN_CI_OR_NOT
def test_an_unconfigured_postgresql_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.delenv("PRODCAT_TEST_POSTGRES_URL", raising=False)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(BaseException, match="PostgreSQL not configured") as stopped:
        request.getfixturevalue("postgres_url")
    assert stopped.type is outcome
