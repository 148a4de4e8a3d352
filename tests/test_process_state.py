"""conftest's restored_process_state: what a test changes of the process is put back before the next one."""

from __future__ import annotations

import logging

import pytest

import conftest

#: run in a session of their own, in this order: the first changes the process, the second must not see it
CHANGING_THEN_CHECKING = """
import logging
import os


def test_changes_the_process_state():
    os.environ["PRODCAT_ADDED_BY_A_TEST"] = "added"
    os.environ["PRODCAT_CHANGED_BY_A_TEST"] = "changed"
    del os.environ["PRODCAT_REMOVED_BY_A_TEST"]
    logging.getLogger("prodcat").setLevel(logging.DEBUG)


def test_sees_the_state_it_had_before():
    assert "PRODCAT_ADDED_BY_A_TEST" not in os.environ
    assert os.environ["PRODCAT_CHANGED_BY_A_TEST"] == "as it was"
    assert os.environ["PRODCAT_REMOVED_BY_A_TEST"] == "as it was"
    assert logging.getLogger("prodcat").level == {level}
"""


def test_a_variable_or_logger_level_a_test_changes_is_restored_for_the_next(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PRODCAT_WORKERS=2, exported by a `prodcat serve --workers 2` test, stayed for the rest of the session and a
    later serve test got uvicorn's worker factory instead of an app: each test had to restore what it changed."""
    monkeypatch.setenv("PRODCAT_CHANGED_BY_A_TEST", "as it was")
    monkeypatch.setenv("PRODCAT_REMOVED_BY_A_TEST", "as it was")
    pytester.makepyfile(CHANGING_THEN_CHECKING.format(level=logging.getLogger("prodcat").level))
    pytester.runpytest(plugins=[conftest]).assert_outcomes(passed=2)
