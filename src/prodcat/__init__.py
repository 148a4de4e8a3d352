"""prodcat: categorise marketplace products from their text and photo."""

from importlib import metadata


def installed_version() -> str:
    """The version of prodcat installed; ``dev`` for a source tree run without being installed."""
    try:
        return metadata.version("prodcat")
    except metadata.PackageNotFoundError:
        return "dev"
