"""``prodcat audit``: what is in a catalogue, and what is wrong with it, before training on it.

:func:`audit_catalog` returns one JSON-serialisable dict with these sections:

``summary``     products, labelled products, loader issues by field
``classes``     class counts and imbalance ratio (largest / smallest class) per hierarchy level, categories
                written several ways, categories labelled that have subcategories
``text``        title/description lengths in characters and words, missing titles/descriptions, products with
                neither text nor photo
``languages``   detected language of each product's text
``duplicates``  exact (same normalised text) and near (TF-IDF cosine >= threshold to the group's
                first text) duplicate groups, the groups whose labels disagree, and ``members``: every product of
                every group (:func:`~.duplicates.duplicate_members`)
``markup``      products with HTML tags, HTML entities or mojibake, per field, with examples
``images``      photos missing or unreadable, small, low detail (blur), white borders, colour, exact and perceptual
                duplicates (and those with conflicting labels) — from :mod:`prodcat.image.quality` — with their
                thresholds, and ``issues``: every flagged photo (:func:`~.inputs.photo_issues`)
``labels``      (``labels=True``) products whose given category disagrees confidently with
                cross-validated predictions (confident learning), with the suggested category, and ``warnings``
                (products not checked...); ``{"skipped": True, "reason": ...}`` when there are too few
                categories or products

:func:`write_audit_report` writes ``audit.json``, a self-contained ``audit.html`` (charts and thumbnails embedded
as base64), and the whole lists the report shows the first rows of: ``input_issues.csv``, ``text_duplicates.csv``,
``photo_issues.csv``, ``label_issues.csv``. ``audit.json`` is :func:`audit_summary` of the dict: in it,
``duplicates.members`` and ``images.issues`` are their row count, CSV name and first rows, not the whole lists.

The modules: :mod:`.inputs` (class balance, text, languages, markup, photos), :mod:`.duplicates` (duplicate texts),
:mod:`.labels` (the label audit), :mod:`.core` (:func:`audit_catalog`), :mod:`.report` (the report folder),
:mod:`.command` (``prodcat audit``, its console summary).
"""

from prodcat.catalog.audit.command import run_audit, summary_lines
from prodcat.catalog.audit.core import audit_catalog
from prodcat.catalog.audit.duplicates import TEXT_DUPLICATE_COLUMNS, duplicate_members, duplicate_stats, normalised_text
from prodcat.catalog.audit.inputs import (
    LARGE_BORDER,
    MAX_EXAMPLES,
    PATH_SEPARATORS,
    PHOTO_ISSUE_COLUMNS,
    UNSPLIT_SHARE,
    class_balance,
    image_stats,
    labelled_above_subcategories,
    language_stats,
    markup_stats,
    photo_issues,
    text_stats,
    unsplit_separator,
    written_several_ways,
)
from prodcat.catalog.audit.labels import (
    LABEL_ISSUE_COLUMNS,
    LOW_CV_ACCURACY,
    MAX_UNCHECKED_SHARE,
    MIN_SUGGESTION_CONFIDENCE,
    confident_label_issues,
    label_audit_outlook,
    label_issues,
    unchecked_products,
    unchecked_warning,
)
from prodcat.catalog.audit.report import (
    AUDIT_FILES,
    INPUT_ISSUES_CSV,
    LABEL_ISSUES_CSV,
    PHOTO_ISSUES_CSV,
    TEXT_DUPLICATES_CSV,
    audit_summary,
    thumbnail,
    write_audit_report,
)

__all__ = [
    "AUDIT_FILES",
    "INPUT_ISSUES_CSV",
    "LABEL_ISSUES_CSV",
    "LABEL_ISSUE_COLUMNS",
    "LARGE_BORDER",
    "LOW_CV_ACCURACY",
    "MAX_EXAMPLES",
    "MAX_UNCHECKED_SHARE",
    "MIN_SUGGESTION_CONFIDENCE",
    "PATH_SEPARATORS",
    "PHOTO_ISSUES_CSV",
    "PHOTO_ISSUE_COLUMNS",
    "TEXT_DUPLICATES_CSV",
    "TEXT_DUPLICATE_COLUMNS",
    "UNSPLIT_SHARE",
    "audit_catalog",
    "audit_summary",
    "class_balance",
    "confident_label_issues",
    "duplicate_members",
    "duplicate_stats",
    "image_stats",
    "label_audit_outlook",
    "label_issues",
    "labelled_above_subcategories",
    "language_stats",
    "markup_stats",
    "normalised_text",
    "photo_issues",
    "run_audit",
    "summary_lines",
    "text_stats",
    "thumbnail",
    "unchecked_products",
    "unchecked_warning",
    "unsplit_separator",
    "write_audit_report",
    "written_several_ways",
]
