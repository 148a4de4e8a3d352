"""Catalogues: loaders per source (:mod:`.loaders`), the canonical schema (:mod:`.schema`), the audit."""

# here, apart from the loaders, as the command line needs them without importing pandas: its options, and the
# error it says in one line

#: ``--format`` / ``load_catalog(format=...)``: the catalogue formats read (``auto`` detects the format)
FORMATS = ("auto", "flipkart", "rakuten", "fashion", "csv", "parquet")


class CatalogFormatError(ValueError):
    """The path or its columns do not match the requested (or any known) catalogue format."""
