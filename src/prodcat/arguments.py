"""The command-line options shared by several commands, and their types: a wrong value is refused by argparse,
with the option's name, before any work starts (not as a library's traceback minutes later).

Like the parsers that use it, this module imports no library the commands drive (pandas, scikit-learn...):
``prodcat --help`` and a mistyped option are answered at once, and a command's code is imported when it runs
(:func:`run_later`).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from prodcat.catalog import FORMATS
from prodcat.config import MODALITIES, ConfigError, load_config_and_folds, seed_problem, shipped_configs
from prodcat.manifest import is_bundle


def run_later(target: str) -> Callable[[argparse.Namespace], int]:
    """The command function ``target`` (``"package.module:function"``) as a parser's ``func``, imported only when
    the command runs: building the parser then imports none of the libraries the command needs."""
    module, _, name = target.partition(":")

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), name)(args)

    return run


def add_help_completed_by(parser: argparse.ArgumentParser, complete: Callable[[argparse.ArgumentParser], None]) -> None:
    """Give ``parser`` (made with ``add_help=False``) its ``-h, --help``, which first calls ``complete(parser)``: the
    parts of the help only a heavy library knows (the photo types Pillow decodes...) are written in when the help
    is shown, not each time the command line is parsed."""
    parser.add_argument(
        "-h",
        "--help",
        # argparse calls an action class with its arguments: a partial of one is called the same way
        action=cast(type[argparse.Action], functools.partial(_CompletedHelp, complete=complete)),
        default=argparse.SUPPRESS,
        help="show this help message and exit",  # argparse's own -h, word for word
    )


class _CompletedHelp(argparse._HelpAction):
    def __init__(self, complete: Callable[[argparse.ArgumentParser], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.complete = complete

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        self.complete(parser)
        super().__call__(parser, *args, **kwargs)


def add_loader_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``data``, ``--format`` and the column-mapping options of
    :func:`~prodcat.catalog.loaders.load_catalog` to a subcommand (read by
    :func:`~prodcat.catalog.loaders.load_from_args`)."""
    parser.add_argument("data", help="catalogue: a Flipkart/Rakuten/fashion folder, or a CSV/TSV/Parquet file")
    parser.add_argument("--format", default="auto", choices=FORMATS, help="catalogue format (default: detect)")
    mapping = parser.add_argument_group("columns of a CSV/Parquet catalogue (default: the canonical names)")
    for field in ("id", "title", "description", "image", "category"):
        mapping.add_argument(f"--{field}-column", metavar="NAME", help=f"column holding the product {field}")
    mapping.add_argument(
        "--image-root",
        metavar="DIR",
        help="folder relative photo paths start from (Flipkart, Rakuten, fashion: the photo folder, "
        "instead of the one beside the CSV)",
    )
    mapping.add_argument("--category-sep", metavar="SEP", help="separator of category levels, e.g. '/' or '>>'")
    mapping.add_argument("--language", choices=("en", "fr"), help="language of Rakuten's category names (default en)")


def user_path(text: str) -> Path:
    """A path option or argument, ``~`` expanded as the catalogue's always was: the shell leaves it as it is in
    ``--out=~/preds.csv`` or in quotes, and it was then a folder named ``~``, a bundle not found, or a ``predict``
    run whose parts pandas wrote under the home folder and the rest beside them."""
    return Path(text).expanduser()


def output_file(text: str) -> Path:
    """A file to write (``predict --out``), as :func:`user_path`; one whose end names a folder
    (:func:`_folder_ending`) is refused: ``--out results/`` wrote the predictions to a file named ``results``. So is
    a device, pipe or socket: the file written beside it is renamed over it, and ``--out /dev/null`` run as root
    replaced the machine's /dev/null with a file of predictions. ``-``, the standard output to most tools, is refused
    too: it wrote a file named ``-``."""
    if text == "-":
        raise argparse.ArgumentTypeError(
            "- (the standard output) cannot be written: the predictions are kept by chunks, to resume from, then "
            "renamed into place; give the file to write, e.g. preds.csv"
        )
    if ending := _folder_ending(text):
        example = os.path.join(text, "preds.csv")
        raise argparse.ArgumentTypeError(
            f"{text} ends with {ending}, so it names a folder: give the file to write, e.g. {example}"
        )
    path = user_path(text)
    try:
        device_or_pipe = path.exists() and not path.is_file() and not path.is_dir()  # a folder: refused later
    except OSError as exc:  # not a missing file: a name too long, a folder on the way that cannot be searched
        raise argparse.ArgumentTypeError(f"{text} cannot be written ({exc.strerror})") from None
    if device_or_pipe:
        raise argparse.ArgumentTypeError(
            f"{text} is a device, pipe or socket, not a file: give the file to write (it is replaced whole)"
        )
    longest = _name_max(path.parent) - LONGEST_BESIDE_OUT
    if len(os.fsencode(path.name)) > longest:
        raise argparse.ArgumentTypeError(
            f"{text}: its name is too long for the files written beside it (OUT.parts/, OUT.issues.csv and their "
            f"temporary files, up to {LONGEST_BESIDE_OUT} bytes longer): give a name of {longest} bytes at most"
        )
    return path


#: how many bytes longer than the output's name the longest name ``predict`` writes beside it is: the temporary file
#: its OUT.issues.csv is written to, ``.OUT.issues.csv.<12 hex digits>.tmp`` (:func:`prodcat.files.temporary_sibling`,
#: not imported: it imports pandas); OUT.parts/, .OUT.lock and the others are shorter. A name the file system takes
#: whose own are too long failed once the catalogue was read, in a traceback (the lock) or 'File name too long'
LONGEST_BESIDE_OUT = len(".") + len(".issues.csv") + len(".0123456789ab.tmp")


def _name_max(folder: Path) -> int:
    """The longest file name, in bytes, of the file system of ``folder`` (or of its first existing parent); 255,
    the usual limit, where it cannot be asked."""
    try:
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # AttributeError: no pathconf (Windows)
        return 255


def _folder_ending(text: str) -> str | None:
    """What ends the path ``text`` as a folder's, ``None`` if nothing does: a path separator, or a last component
    ``.`` or ``..`` (:class:`~pathlib.Path` drops a final ``.``: ``results/.`` became the file ``results``)."""
    if text.endswith(("/", os.sep)):
        return text[-1]
    last = os.path.basename(text)
    return last if last in (os.curdir, os.pardir) else None


class ConfigOption(argparse.Action):
    """``--config FILE``: a YAML or TOML experiment config (or the one a bundle or report records), read and checked
    when the command line is, as ``config``, and as ``recorded_folds`` the number of folds a cv report's metrics.json
    records (``None`` for another file), which ``cv --config`` takes unless given ``--folds``: both of one read of the
    file (:func:`~prodcat.config.load_config_and_folds`)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: str | None = None
    ) -> None:
        try:
            config, folds = load_config_and_folds(user_path(values))
        except (ConfigError, OSError) as error:  # said as a wrong type is: "argument --config: ..."
            raise argparse.ArgumentError(self, str(error)) from None
        setattr(namespace, self.dest, config)
        namespace.recorded_folds = folds


def add_config_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    """Add ``--config`` (:class:`ConfigOption`) to ``parser`` or an argument group of one, with the ``None`` default
    of ``recorded_folds``, which the option sets only when given (an action can give no default to another dest).
    Its help ends with the names of the configs prodcat ships, which it reads wherever prodcat is installed."""
    shipped = f"; or a config prodcat ships, by its name: {', '.join(shipped_configs())}"
    parser.add_argument("--config", action=ConfigOption, help=help + shipped)
    parser.set_defaults(recorded_folds=None)


def add_modalities_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--modalities`` (:func:`modality_list`), which overrides the config's modalities, to ``parser`` or an
    argument group of one: the same option in every command that trains a config (train, cv, audit --labels)."""
    parser.add_argument(
        "--modalities",
        type=modality_list,
        help="text, image or text,image (default: the config's, else all the catalogue has)",
    )


def add_jobs_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add ``--jobs`` (:func:`job_count`; ``None`` when not given: one process, this one) to ``parser`` or an argument
    group of one: the processes fitting the folds of a model's inner cross-validations (``ProductClassifier``'s
    ``n_jobs``), in every command that trains one (train, cv, audit --labels)."""
    parser.add_argument(
        "--jobs",
        type=job_count,
        metavar="N",
        help="processes fitting the folds of the model's inner cross-validation, at most one per core (default 1: "
        "this one; -1: every core): the same model, in more memory, sooner where cores are idle; not recorded, as it "
        "changes nothing of the model",
    )


def positive_int(text: str) -> int:
    """An integer of at least 1 (``--sample``, ``--workers``...)."""
    return _at_least(text, 1)


def non_negative_int(text: str) -> int:
    """An integer of at least 0 (``prodcat collect --retries``)."""
    return _at_least(text, 0)


def positive_seconds(text: str) -> float:
    """A finite duration of more than 0 seconds (``--worker-wait``: dask reads a timeout of 0 as none, for ever;
    ``prodcat collect --timeout``)."""
    return _finite_number(text, "a number of seconds", zero_allowed=False)


def seconds(text: str) -> float:
    """A finite duration of 0 seconds or more (``prodcat collect --backoff``: 0 retries at once)."""
    return _finite_number(text, "a number of seconds", zero_allowed=True)


def positive_rate(text: str) -> float:
    """A finite number of events a second, more than 0 (``prodcat collect --rate``): ``inf`` or ``nan`` would space
    the requests by no wait at all."""
    return _finite_number(text, "a number per second", zero_allowed=False)


def _finite_number(text: str, what: str, *, zero_allowed: bool) -> float:
    """``text`` as a finite float above 0 (or at least 0), refused in the words ``what`` (``a number of seconds``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
    # inf and nan too: collect's --timeout inf crashed once a request was sent, its --rate nan spaced no request
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_allowed):
        raise argparse.ArgumentTypeError(f"must be {what}{', 0 or more' if zero_allowed else ' above 0'}, got {text}")
    return value


def job_count(text: str) -> int:
    """A number of parallel processes as joblib reads it: 1 or more, or -1 for every core (-2: all but one...);
    0 was joblib's "n_jobs == 0 has no meaning", after the catalogue was read."""
    value = _integer(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more, or -1 for every core, got 0")
    return value


def random_seed(text: str) -> int:
    """A seed numpy and scikit-learn take: 0 to 2**32 - 1 (a negative one was their traceback, after the work)."""
    value = _integer(text)
    if problem := seed_problem(value):
        raise argparse.ArgumentTypeError(f"{problem}, got {value}")
    return value


def sample_size(text: str) -> int:
    """A number of products to draw, 0 = all of them: the way back from a config's ``sample`` (a bundle's manifest.json
    of a run on a sample) to every product."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a sample size is 0 (every product) or more, got {value}")
    return value


def category_level(text: str) -> int:
    """A depth of the category paths: 1 = the top level, 0 = the full path."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a category depth is 0 (the full path) or more, got {value}")
    return value


def fold_count(text: str) -> int:
    """A number of cross-validation folds: at least 2."""
    value = _integer(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"cross-validation needs at least 2 folds, got {value}")
    return value


def modality_list(text: str) -> list[str]:
    """``text``, ``image`` or ``text,image``: the modalities a model reads."""
    modalities = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities or len(set(modalities)) < len(modalities):
        raise argparse.ArgumentTypeError(f"expected text, image or text,image, got {text!r}")
    return modalities


def _at_least(text: str, least: int) -> int:
    value = _integer(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def writable_folder(what: str) -> Callable[[str], Path]:
    """An argparse type for a folder ``what`` can be written in: refused now, before any work, not when ``what`` is
    written after minutes of it. Nothing is created (a command refused later leaves no empty folder): the folder,
    or the nearest of its parents that exists, must be a folder that takes files."""

    def folder(text: str) -> Path:
        path = user_path(text)
        if problem := unwritable_folder(path, what):
            raise argparse.ArgumentTypeError(problem)
        return path

    return folder


#: ``--report DIR`` of the commands that write a report
report_dir = writable_folder("the report")


def bundle_dir(text: str) -> Path:
    """Where ``prodcat train`` writes its bundle, checked before training (as :func:`writable_folder`): a new folder,
    an empty one or a bundle to replace (:func:`~prodcat.bundle.destination_problem`), in a folder that takes
    files and is no other bundle's."""
    from prodcat.bundle import destination_problem

    path = user_path(text)
    # a bundle is replaced where it is, never written into another (which would no longer load)
    inside = None if is_bundle(path) else into_bundle("", path)
    if problem := destination_problem(path) or inside or unmovable_bundle_folder(path):
        raise argparse.ArgumentTypeError(problem)
    return path


def unmovable_bundle_folder(path: Path) -> str | None:
    """Why a bundle cannot be written at ``path`` (new, or an empty folder or bundle to replace), or ``None``.

    :func:`~prodcat.bundle.save_bundle` writes the bundle in a folder beside ``path``, then renames an existing
    ``path`` away and that folder into place: ``path``'s parent must take files, and an existing ``path`` must be
    a folder that can be renamed, not a mount point (a volume mounted there, as containers have). Found after
    training otherwise, which then ended in OSError's traceback and lost the model.
    """
    if not path.exists():
        return unwritable_folder(path, "the model bundle")
    folder = path.resolve()
    if os.path.ismount(folder):
        return (
            f"{path} is a mount point, which cannot be replaced (a bundle is written beside it, then renamed into "
            f"place): give a folder inside it, e.g. {path / 'model'}"
        )
    for where in (folder, folder.parent):  # the old bundle is moved out of the one, the new one written in the other
        if problem := unwritable_folder(where, "the model bundle"):
            return problem if where == folder else f"{problem} (a bundle is written beside {path}, then renamed)"
    return None


def unwritable_folder(path: Path, what: str) -> str | None:
    """Why ``what`` cannot be written in the folder ``path`` (to create, or existing); ``None``: it can. Nothing
    is created."""
    existing = next(folder for folder in (path, *path.parents) if folder.exists() or folder.is_symlink())
    if not existing.exists():  # a link to nothing: no folder can be made there, and a report failed after its work
        target = os.readlink(existing)
        return f"{existing} is a symbolic link to {target}, which does not exist; give a folder for {what}"
    if not existing.is_dir():
        where = "" if existing == path else f": {existing} is a file"
        return f"{path} is not a folder{where}; give a folder for {what}"
    try:
        with tempfile.TemporaryFile(dir=existing):  # permissions, or a read-only file system, which refuses root
            pass
    except OSError as error:
        return f"cannot write {what} in {path}: {error.strerror or error}"
    return None


def into_bundle(option: str, path: str | Path, bundle: str | Path | None = None) -> str | None:
    """Why the output ``option`` (``--out``, ``--report``; ``""`` where argparse names it) must not be written at
    ``path``: inside a model bundle (the folder ``path`` is, or one above it, holding a bundle's manifest), which
    would then refuse to load for every command (a bundle holds its own files only); ``None``: it is elsewhere. Any
    bundle, the command's ``bundle`` or another: cv, audit and explore, which read none, would break one as well."""
    target = Path(path).expanduser().resolve()
    holder = next((folder for folder in (target, *target.parents) if is_bundle(folder)), None)
    if holder is None:
        return None
    # named as the command line does: the command's bundle, else the folder of path's own spelling that it is
    spelled = [*([Path(bundle)] if bundle is not None else []), Path(path), *Path(path).parents]
    named = next((folder for folder in spelled if folder.expanduser().resolve() == holder), holder)
    output = f"{option} {path}".strip()
    return (
        f"{output} is inside the model bundle {named}, which holds its own files only (with another there it no "
        "longer loads): write it elsewhere"
    )
