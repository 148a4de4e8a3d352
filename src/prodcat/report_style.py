"""The look the HTML reports share (audit, explore and explain; evaluate, cv and robustness), written once so that
they read alike and a fix to one reaches them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment

#: a column at most 1200 px wide, centred; the padding keeps the text off the window's edges when the window is no
#: wider than the column, where ``margin: auto`` leaves none
PAGE_CSS = """
  body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1.5em; color: #222; }
  h1 { font-size: 1.5em; }
"""

#: the tables and the cards of headline figures of the audit and explore reports
TABLE_CSS = """
  h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
  table { border-collapse: collapse; margin: .5em 0 1em; font-size: .9em; }
  th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
  th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .cards { display: flex; flex-wrap: wrap; gap: .8em; }
  .card { border: 1px solid #ddd; border-radius: 6px; padding: .6em 1em; min-width: 9em; }
  .card b { display: block; font-size: 1.4em; }
  .warn { color: #b45309; }
"""


def report_environment(package: str) -> Environment:
    """The Jinja environment of the report templates of ``package`` (its ``templates`` folder), which write
    ``{{ page_css }}`` and ``{{ table_css }}`` in their ``<style>``."""
    from jinja2 import Environment, PackageLoader
    from markupsafe import Markup

    # autoescape: product texts carry raw HTML, which must show as text, not run in the report
    env = Environment(loader=PackageLoader(package, "templates"), autoescape=True)
    env.globals.update(page_css=Markup(PAGE_CSS), table_css=Markup(TABLE_CSS))
    return env
