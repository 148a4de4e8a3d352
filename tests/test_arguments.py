"""The command-line options several commands share (:mod:`prodcat.arguments`)."""

from __future__ import annotations

import argparse
import json

from prodcat.arguments import add_config_option
from prodcat.config import Config


def test_the_config_option_of_an_argument_group_gives_the_recorded_folds_with_or_without_it(tmp_path):
    """``--config`` sets ``recorded_folds`` only when given: add_config_option gives it its default, also when the
    option is in an argument group (audit's), whose defaults are its parser's."""
    parser = argparse.ArgumentParser()
    add_config_option(parser.add_argument_group("label noise"), help="a config")
    assert parser.parse_args([]) == argparse.Namespace(config=None, recorded_folds=None)
    report = tmp_path / "metrics.json"  # a cv report: its config, and a record per fold
    report.write_text(json.dumps({"config": {}, "folds": [{"accuracy": 0.5}] * 3}), encoding="utf-8")
    assert parser.parse_args(["--config", str(report)]) == argparse.Namespace(config=Config(), recorded_folds=3)
