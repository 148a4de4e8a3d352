"""README claims that code can check: the config block it calls the defaults is the defaults."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from prodcat.config import Config

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_config_block_is_the_default_config() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"The defaults, as a file .*?```yaml\n(.*?)```", text, re.DOTALL)
    assert block, "README lost its defaults block"
    written = Config.model_validate(yaml.safe_load(block.group(1)))
    assert written.model_dump() == Config().model_dump()
