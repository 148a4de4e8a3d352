"""Errors the command line says in one line (:func:`prodcat.cli.run`), apart from the modules that raise them and
their libraries: catching one imports none of them. ``prodcat serve --workers N``'s supervisor catches a bad
bundle's error, which the child checking the bundle sends back, and loads no model: importing
:mod:`prodcat.bundle` for it would hold joblib and numpy in that process for the server's life."""


class BundleError(RuntimeError):
    """A bundle is missing, modified, or from an incompatible format version."""


class RunRefused(RuntimeError):
    """A command refuses to run on what it was given (a config whose heads the installation cannot train), before
    the work it would have done: its message is the line said after ``error:``."""
