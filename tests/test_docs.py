"""README and docs/ claims that code can check: the config block it calls the defaults is the defaults, the command
lines they show parse, and the options they name are their command's."""

from __future__ import annotations

import argparse
import importlib
import itertools
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from starlette.routing import Route

from prodcat.cli import build_parser, command_parsers, main
from prodcat.config import Config, shipped_configs

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]


def test_the_readme_config_block_is_the_default_config() -> None:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"The defaults, as a file .*?```yaml\n(.*?)```", text, re.DOTALL)
    assert block, "README lost its defaults block"
    written = Config.model_validate(yaml.safe_load(block.group(1)))
    assert written.model_dump() == Config().model_dump()


def _ignored_by_git(paths: list[str]) -> set[str]:
    """Those of ``paths`` (relative to the repo, existing or not) that the repo's .gitignore hides."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and the repository's .git")
    found = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=REPO,
        input="\n".join(paths),
        capture_output=True,
        text=True,
    )
    assert found.returncode in (0, 1), found.stderr  # 1: none is ignored
    return set(found.stdout.splitlines())


def test_what_the_readme_commands_write_in_the_repo_is_ignored_and_no_source_is() -> None:
    """The Use block's commands, run from the repo root as it says, left preds.csv, champagne-preds.csv (and their
    .issues.csv and .parts/) and data/ untracked, one `git add .` from a commit of predictions and collected photos.
    Everything they write is ignored, and no tracked file nor a new one beside the sources."""
    block = re.search(r"## Use\n\n```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    assert block, "README lost its Use block"
    written = []
    for option, path in re.findall(r"--(out|report) (\S+)", block.group(1)):
        if Path(path).is_absolute():  # outside the repo
            continue
        # a bundle's, report's or collected folder's files; predict's (and train's) issues file, parts and lock
        written.append(f"{path}/file")
        if option == "out":
            lock = Path(path).with_name(f".{Path(path).name}.lock").as_posix()
            written += [path, f"{path}.issues.csv", f"{path}.parts/part-00000.parquet", lock]
    assert {"preds.csv", "champagne-preds.csv", "data/champagne/file"} <= set(written)
    assert set(written) - _ignored_by_git(written) == set()
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    sources = [*tracked, "src/prodcat/data/new.py", "tests/data/products.csv", "benchmarks/preds.py"]
    assert _ignored_by_git(sources) == set()


def _block_commands(text: str) -> list[str]:
    """The ``prodcat ...`` lines of ``text``'s bash blocks, without their comment: whole command lines."""
    return [
        line.split(" #")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
        for line in block.splitlines()
        if line.startswith("prodcat ")
    ]


#: an option a page names (``--workers``, not ``x--y`` nor a table's ``---``)
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: the first word of a command line and what follows it: ``dask worker --nthreads 1 ...``, ``audit --labels``
COMMAND_LINE = re.compile(r"(?P<program>[a-z][\w.-]*) ")


def _options_by_command() -> dict[str, set[str]]:
    """Each command's option strings (``""``: the top-level parser's)."""
    parser = build_parser()
    options = {"": {option for action in parser._actions for option in action.option_strings}}
    for name, command in command_parsers(parser).items():
        options[name] = {option for action in command._actions for option in action.option_strings}
    return options


def test_every_option_shown_with_a_command_is_one_of_its_options() -> None:
    """A renamed or dropped option stayed on the pages naming it (`prodcat predict ... --workrs 2` fails only when
    run): each option of a command line the pages show, in a block or inline (`prodcat audit --sample N`), is its
    command's."""
    options = _options_by_command()
    wrong = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for line in _block_commands(text) + re.findall(r"`(prodcat [^`]*)`", text):
            command = line.split()[1]
            command = "" if command.startswith("-") else command
            if command not in options:  # a message quoted, such as `prodcat 0.1.0 there, 0.2.0 now`
                continue
            wrong += [
                f"{page.name}: {line!r}: {option}" for option in OPTION.findall(line) if option not in options[command]
            ]
    assert wrong == []


def test_the_readme_command_lines_parse() -> None:
    """Each command line of README's blocks is accepted by the parser as written: its choices (`--base no_text`),
    its required options and arguments, its values' types."""
    lines = _block_commands(README.read_text(encoding="utf-8"))
    assert len(lines) >= 15, "README lost its Use block"
    for line in lines:
        try:
            build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit as refused:
            pytest.fail(f"README shows {line!r}, which the parser refuses (exit {refused.code})")


def test_every_option_shown_with_a_benchmark_is_one_of_its_options() -> None:
    """The same for the benchmark commands the pages cite as a figure's source (`fusion.py --seed N`): each option
    is one the script's parser adds, so the command reruns the measurement."""
    wrong = []
    for page in PAGES:
        for name, arguments in re.findall(r"`(?:benchmarks/)?(\w+)\.py([^`]*)`", page.read_text(encoding="utf-8")):
            script = REPO / "benchmarks" / f"{name}.py"
            if not script.exists():  # a test file (`tests/test_measured.py`)
                continue
            source = script.read_text(encoding="utf-8")
            wrong += [
                f"{page.name}: {name}.py {option}"
                for option in OPTION.findall(arguments)
                if f'"{option}"' not in source
            ]
    assert wrong == []


def test_a_misspelt_option_is_refused_under_its_commands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/commands.md: a misspelt flag is refused in one line under the command's usage. argparse refused it under
    the top-level usage (`usage: prodcat [-h] [-v] [--version] COMMAND ...`), which shows none of the command's
    options, the right spelling among them."""
    with pytest.raises(SystemExit) as refused:
        main(["predict", "models/flipkart", "products.csv", "--out", "preds.csv", "--workrs", "2"])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("usage: prodcat predict ")
    assert "--workers WORKERS" in error
    assert error.splitlines()[-1] == "prodcat predict: error: unrecognized arguments: --workrs 2"


def test_several_catalogues_from_an_unquoted_star_are_refused_saying_one_is_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/commands.md: `prodcat predict models/demo data/*.csv`, the shell giving every file it matches, stopped at
    'unrecognized arguments: data/b.csv data/c.csv', as if those were a mistaken option. It says a command reads one
    catalogue, names those given and how to read several (once each, with its own --out where it takes one)."""
    for argv, own_out in (
        (
            ["predict", "models/demo", "data/a.csv", "data/b.csv", "data/c.csv", "--out", "p.csv"],
            ", each with its own --out",
        ),
        (["evaluate", "models/demo", "data/a.csv", "data/b.csv", "data/c.csv", "--report", "r"], ""),
    ):
        with pytest.raises(SystemExit) as refused:
            main(argv)
        assert refused.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f"prodcat {argv[0]}: error: one catalogue is read at a time, and 3 were given: data/a.csv data/b.csv "
            f"data/c.csv (a * left unquoted gives every file it matches); run the command once per catalogue{own_out}, "
            "or join them into one table first"
        )


def _help_examples(command: argparse.ArgumentParser) -> list[str]:
    """The ``prodcat ...`` command lines of ``command``'s help epilog, a line continued by ``\\`` joined."""
    lines = (command.epilog or "").replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip().startswith("prodcat ")]


def test_every_help_example_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command's `--help` ends with examples, which a user copies: each is accepted by the parser as written
    (its options the command's, its choices, required options and values' types). A config file an example names is
    made empty in the current folder, as the parser opens it."""
    monkeypatch.chdir(tmp_path)
    examples = [line for command in command_parsers(build_parser()).values() for line in _help_examples(command)]
    assert len(examples) >= 25, "the helps lost their examples"
    for line in examples:
        _parse_in_the_current_folder(line)


def _parse_in_the_current_folder(line: str) -> None:
    """Parse the command ``line`` as written, the config files it names made empty first (the parser opens them)."""
    argv = shlex.split(line)[1:]
    for option, value in itertools.pairwise(argv):
        if option == "--config":
            Path(value).parent.mkdir(parents=True, exist_ok=True)
            Path(value).write_text("{}\n", encoding="utf-8")
    try:
        build_parser().parse_args(argv)
    except SystemExit as refused:
        pytest.fail(f"a --help shows {line!r}, which the parser refuses (exit {refused.code})")


def test_a_help_example_naming_a_shipped_config_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An example naming a config in a folder (`--config configs/fast-text.yaml`, as the repository ships) failed
    the check above on a FileNotFoundError: its empty stand-in was written in a folder not made."""
    monkeypatch.chdir(tmp_path)
    _parse_in_the_current_folder("prodcat train products.csv --out models/mine --config configs/fast-text.yaml")
    assert (tmp_path / "configs" / "fast-text.yaml").is_file()


#: options with no default to state: what only the user can name (the products, a cluster, a key, a contact, files),
#: and explain's --ids and --sample, one of which is required
WITHOUT_DEFAULT = {
    ("explain", "--ids"),
    ("explain", "--sample"),
    ("predict", "--scheduler"),
    ("train", "--feedback"),
    ("serve", "--api-key-file"),
    ("collect", "--contact"),
    ("fetch-photos", "--contact"),
    ("app", "--data"),
    ("app", "--predictions"),
    ("app", "--root"),
}


def test_every_optional_value_says_its_default_in_the_help() -> None:
    """`prodcat explore --help` said 'study a stratified sample of N products', `robustness` the same, `train` and
    `cv` 'override the config's fusion', `collect` '--rate: default: the API's stated limit' with no number: what
    each does when left out, a user had to find in the code. Every option taking a value, unless required, says its
    default in its help or its group's title (the catalogue's columns: 'default: the canonical names')."""
    silent = []
    for name, command in command_parsers(build_parser()).items():
        for group in command._action_groups:
            for action in group._group_actions:
                takes_value = action.option_strings and action.nargs != 0 and action.help != argparse.SUPPRESS
                if not takes_value or action.required or (name, action.option_strings[0]) in WITHOUT_DEFAULT:
                    continue
                if "default" not in f"{group.title} {action.help}":
                    silent.append(f"{name} {action.option_strings[0]}")
    assert silent == []
    fusion = command_parsers(build_parser())["train"]._option_string_actions["--fusion"].help
    assert f"else {Config().fusion})" in fusion


def test_every_config_file_the_pages_name_exists() -> None:
    """The pages and the results' notes point users to ready configs (`configs/fast-text.yaml`); one removed or
    renamed (`configs/early-select.yaml`, removed when its classifier became the default, was still said to ship)
    fails only once a user passes it to --config."""
    notes = sorted((REPO / "benchmarks" / "results").glob("*.md"))
    named = {
        (page.name, path)
        for page in [*PAGES, *notes]
        for path in re.findall(r"\bconfigs/[\w.-]+\.(?:yaml|yml|toml)\b", page.read_text(encoding="utf-8"))
    }
    assert named, "the pages name no config"
    assert sorted((page, path) for page, path in named if not (REPO / path).is_file()) == []
    # and by its name alone (`--config fast-text`), as an installed prodcat reads it
    by_name = {
        (page.name, name)
        for page in PAGES
        for name in re.findall(r"--config ([a-z][\w-]*)\b(?![\w./-])", page.read_text(encoding="utf-8"))
    }
    assert ("README.md", "fast-text") in by_name
    assert sorted((page, name) for page, name in by_name if name not in shipped_configs()) == []


def test_every_source_of_a_measured_figure_exists() -> None:
    """docs/measured.md gives each row's source as the benchmark command and the result file it writes
    (`→ fusion.md`, `explore.json`); each result file named in a row's last cell is in benchmarks/results, so the
    figure can be checked against it."""
    results = REPO / "benchmarks" / "results"
    rows = [
        line for line in (REPO / "docs" / "measured.md").read_text(encoding="utf-8").splitlines() if line[:2] == "| "
    ]
    sources = {
        name for row in rows for name in re.findall(r"`(\w+\.(?:json|md))`", row.rstrip(" |").rsplit(" | ", 1)[-1])
    }
    assert len(sources) >= 15, "measured.md lost its sources"
    assert sorted(name for name in sources if not (results / name).is_file()) == []


def test_every_environment_variable_the_pages_name_is_read() -> None:
    """A variable renamed in the code (`PRODCAT_E5_THREADS`) but not on the pages is silently ignored where a user
    sets it: each `PRODCAT_*` the pages name is in the code, or among those `prodcat serve --help` says it reads
    (one per option, named from it)."""
    sources = [*(REPO / "src").rglob("*.py"), REPO / "tests" / "conftest.py"]
    read = " ".join(path.read_text(encoding="utf-8") for path in sources)
    read += command_parsers(build_parser())["serve"].format_help()
    named = {
        name
        for page in PAGES
        for name in re.findall(r"\bPRODCAT_[A-Z0-9_]*[A-Z0-9]\b", page.read_text(encoding="utf-8"))
    }
    assert {"PRODCAT_API_KEY", "PRODCAT_WORKERS"} <= named
    assert sorted(name for name in named if not re.search(rf"\b{name}\b", read)) == []


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` (``prodcat.image.decode.DECODER_VERSION``) names a module, or an attribute of one."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def test_every_module_and_name_the_pages_cite_exists() -> None:
    """The pages send readers to code by its dotted name (`prodcat.image.decode.DECODER_VERSION`,
    `prodcat.evaluate.explain.explain(predictor, product)`): a module moved or a name renamed leaves them nothing to
    find. Each such name in a code span imports (prose may name a file: 'logs in prodcat.log'), but for the group of
    the extractor plugins' entry points (`prodcat.extractors`), which is the one prodcat reads."""
    from prodcat.features.base import ENTRY_POINT_GROUP

    cited = {name for page in PAGES for name in _cited_code(page.read_text(encoding="utf-8"))}
    assert len(cited) >= 20, "the pages cite no code"
    assert sorted(name for name in cited - {ENTRY_POINT_GROUP} if not _resolves(name)) == []


def _cited_code(text: str) -> set[str]:
    """The dotted names of prodcat's code (``prodcat.image.decode.DECODER_VERSION``) in ``text``'s code spans."""
    spans = re.findall(r"`([^`\n]+)`", text)
    return {name for span in spans for name in re.findall(r"\bprodcat(?:\.[A-Za-z_]\w*)+", span)}


def test_a_file_named_in_prose_is_no_code_cited() -> None:
    """'prodcat.log' in a sentence failed the check above, as a name prodcat's code lacks."""
    text = "Logs may go to prodcat.log; see `prodcat.files.written_together(folder)` and `prodcat.figures`."
    assert _cited_code(text) == {"prodcat.files.written_together", "prodcat.figures"}


def test_every_option_the_pages_name_is_some_commands_or_benchmarks() -> None:
    """Most options are named alone (`--e5-threads N` (`PRODCAT_E5_THREADS`), `--review-db`), not on a command line
    the tests above check: each is an option of a command, or of a benchmark script the page cites."""
    options = _options_by_command()
    known = set().union(*options.values())
    benchmarks = " ".join(script.read_text(encoding="utf-8") for script in (REPO / "benchmarks").glob("*.py"))
    unknown = sorted(
        f"{page.name}: {option}"
        for page in PAGES
        for option in _named_options(page.read_text(encoding="utf-8"), commands=set(options))
        if option not in known and f'"{option}"' not in benchmarks
    )
    assert unknown == []


def _named_options(text: str, commands: set[str]) -> set[str]:
    """The options ``text`` names, but for those on another program's command line, a code span or a line of a code
    block whose first word is none of prodcat's ``commands``, ``prodcat``, ``python`` or a ``.py`` script."""

    def anothers(line: str) -> bool:
        command = COMMAND_LINE.match(line.strip())
        ours = {"prodcat", "python", "python3", *commands}
        return command is not None and command["program"] not in ours and not command["program"].endswith(".py")

    text = re.sub(
        r"```.*?```",
        lambda block: "\n".join(line for line in block[0].splitlines() if not anothers(line)),
        text,
        flags=re.DOTALL,
    )
    text = re.sub(r"`([^`\n]+)`", lambda span: "" if anothers(span[1]) else span[0], text)
    return set(OPTION.findall(text))


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("Start a `dask worker`: `dask worker --nthreads 1 tcp://host:8786`.", set()),
        ("```bash\npip install --upgrade prodcat\nprodcat predict m p.csv --workers 2\n```", {"--workers"}),
        (
            "`prodcat predict --workers 2`, `--review-db`, `python benchmarks/fusion.py --seed 1`, `audit --labels`",
            {"--workers", "--review-db", "--seed", "--labels"},
        ),
        ("a wrapped line of prose naming --chunk-size\nthen --workers", {"--chunk-size", "--workers"}),
    ],
)
def test_the_options_of_another_programs_command_line_are_not_prodcats(text: str, options: set[str]) -> None:
    """`dask worker --nthreads 1` (docs/batch.md's cluster) or `pip install --upgrade` failed the check above, as
    unknown options of prodcat; those of prodcat's and the benchmarks' command lines, and prose's, are still read."""
    assert _named_options(text, commands={"audit", "predict"}) == options


#: curl's options that send a body, which makes its request a POST (``-X`` / ``--request`` aside)
CURL_BODY_OPTIONS = {"-d", "--data", "--data-raw", "--data-binary", "--data-urlencode", "--json", "-F", "--form"}


def _curl_requests(text: str) -> list[tuple[str, str]]:
    """``(method, path)`` of each ``curl`` line of ``text``'s bash blocks (a line continued by ``\\`` joined): POST
    when it sends a body (:data:`CURL_BODY_OPTIONS`), else GET, unless ``-X`` says."""
    requests = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if not line.startswith("curl "):
                continue
            argv = shlex.split(line)
            method = "POST" if CURL_BODY_OPTIONS & set(argv) else "GET"
            for option, value in itertools.pairwise(argv):
                if option in {"-X", "--request"}:
                    method = value
            (url,) = (arg for arg in argv if arg.startswith("http"))
            requests.append((method, urlsplit(url).path or "/"))
    return requests


def test_every_request_the_pages_show_is_a_route_of_the_api(tmp_path: Path) -> None:
    """The curl examples (README's /explain, docs/api.md's) are what a user of the API copies first: each sends its
    method to a path the API serves (`/reviews/4` to `/reviews/{review_id}`): a route of its OpenAPI description, or
    one of its documentation pages (`/docs`, `/openapi.json`)."""
    from types import SimpleNamespace

    from prodcat.serve.app import create_app
    from prodcat.serve.settings import ServeSettings

    model = SimpleNamespace(version="0", labels=["Watches"], manifest={}, modalities=["text"])
    app = create_app(model, ServeSettings(review_db=f"sqlite:///{tmp_path / 'reviews.db'}"))
    described = [(method.upper(), path) for path, operations in app.openapi()["paths"].items() for method in operations]
    pages = [(method, route.path) for route in app.routes if isinstance(route, Route) for method in route.methods or ()]
    routes = [(method, re.sub(r"\{\w+\}", "[^/]+", path)) for method, path in described + pages]
    shown = [request for page in PAGES for request in _curl_requests(page.read_text(encoding="utf-8"))]
    assert len(shown) >= 7, "the pages lost their API examples"
    unserved = [
        f"{method} {path}"
        for method, path in shown
        if not any(method == served and re.fullmatch(pattern, path) for served, pattern in routes)
    ]
    assert unserved == []


@pytest.mark.parametrize(
    ("line", "request_"),
    [
        ("curl -s http://127.0.0.1:8000/health", ("GET", "/health")),
        ("curl -s http://127.0.0.1:8000", ("GET", "/")),
        ("curl --json '{\"title\": \"x\"}' 'http://127.0.0.1:8000/predict?top_k=3'", ("POST", "/predict")),
        ("curl --data-binary @products.json http://127.0.0.1:8000/predict-batch", ("POST", "/predict-batch")),
        ("curl --request DELETE http://127.0.0.1:8000/reviews/4", ("DELETE", "/reviews/4")),
    ],
)
def test_a_curl_example_is_read_as_curl_sends_it(line: str, request_: tuple[str, str]) -> None:
    """curl's other body options (`--json`, `--data-binary`) send a POST too, and a URL may have no path: read as a
    GET, or failing on an index, a correct example failed the check above for a wrong reason."""
    assert _curl_requests(f"```bash\n{line}\n```") == [request_]


def _default_rows(results: str) -> dict[tuple[str, int], dict[str, str]]:
    """fusion.md's rows of the default config, by catalogue and fold seed: each column's first figure, by header."""
    lines = [line for line in results.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines:
        cells = dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=False))
        variant = re.fullmatch(r"default \(early fusion\)(?: \[fold seed (\d)\])?", cells.get("variant", ""))
        if variant and (cells["catalogue"], int(variant.group(1) or 0)) not in rows:  # the first table's
            rows[cells["catalogue"], int(variant.group(1) or 0)] = {
                column: cell.split(" ")[0] for column, cell in cells.items()
            }
    return rows


def test_the_readme_headline_figures_are_those_of_the_results() -> None:
    """README's 'At a glance' quotes the default's cross-validation on three fold seeds, which benchmarks/fusion.py
    writes to fusion.md: a re-run that moves a figure there leaves README's stale unless it is copied; each figure
    README gives is fusion.md's, rounded as README writes it."""
    rows = _default_rows((REPO / "benchmarks" / "results" / "fusion.md").read_text(encoding="utf-8"))
    readme = " ".join(README.read_text(encoding="utf-8").split())

    def three(catalogue: str, column: str, written: str) -> str:
        return " / ".join(written.format(float(rows[catalogue, seed][column].rstrip("%"))) for seed in range(3))

    quoted = [
        three("flipkart", "accuracy", "{:.3f}"),
        f"{three('flipkart', 'auto-accepted', '{:.1f}%')} at {three('flipkart', 'auto precision', '{:.3f}')}",
        three("rakuten", "F1w, products with text", "{:.3f}"),
        three("fashion", "F1 macro", "{:.3f}"),
    ]
    assert [figures for figures in quoted if figures not in readme] == []


def test_the_rakuten_submission_recipe_writes_the_test_index_and_its_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/batch.md's snippet, run as written on a two-product test table and the OUT of prodcat predict: the
    challenge's submission, the test index with each product's prdtypecode."""
    text = (REPO / "docs" / "batch.md").read_text(encoding="utf-8")
    block = re.search(r"## A Rakuten challenge submission\n.*?```python\n(.*?)```", text, re.DOTALL)
    assert block, "docs/batch.md lost its submission snippet"
    (tmp_path / "challenge-test").mkdir()
    (tmp_path / "challenge").mkdir()
    (tmp_path / "challenge-test" / "X_test_update.csv").write_text(
        ",designation,description,productid,imageid\n84916,Console,,11,1\n84917,Revue,,12,2\n", encoding="utf-8"
    )
    (tmp_path / "challenge" / "categories.json").write_text(
        '{"en": {"60": "Video Games & Consoles > Consoles", "2280": "Books > Magazines"}}', encoding="utf-8"
    )
    (tmp_path / "preds.csv").write_text(
        "product_id,category,confidence,decision,top_k,modalities_used,error\n"
        "11,Video Games & Consoles > Consoles,0.9,auto,[],text,\n12,Books > Magazines,0.5,review,[],text,\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "docs/batch.md", "exec"), {})
    assert (tmp_path / "submission.csv").read_text(encoding="utf-8").splitlines() == [
        ",prdtypecode",
        "84916,60",
        "84917,2280",
    ]


def test_make_test_passes_args_to_pytest() -> None:
    """`make test ARGS="..."` (README's Developing section) runs pytest with those arguments; make ignored them."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    args = "-k calibration tests/test_models.py"
    assert 'make test ARGS="' in README.read_text(encoding="utf-8")
    dry = subprocess.run(
        ["make", "-n", "-C", str(REPO), "test", f"ARGS={args}"], capture_output=True, text=True, check=True
    ).stdout
    pytest_line = next(line for line in dry.splitlines() if " -m pytest " in line)
    assert f"-m pytest -q -rs --durations=15 {args}" in pytest_line
