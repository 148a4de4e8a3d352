"""Open Food Facts: the public, key-free food products database (https://world.openfoodfacts.org).

Searched by full text through ``/cgi/search.pl?search_terms=...&json=1`` (the v2 ``/api/v2/search``
filters by tags only), 100 products a page. Its stated limit for searches is 10 requests a minute,
the default rate here, and it asks clients for a User-Agent naming the application and a contact.

Results are paged in ``sort_by=created_t`` order. Without a ``sort_by`` the API sorts by popularity, which
moves with every scan of a product: between two pages, products swapped places across the page boundary, so
that one was served twice and another never. The search sorts on no unique key such as the barcode (its sort
keys are popularity, scan counts, creation and modification times, name, completeness and scores); a product's
creation time never changes, so products move between pages only when one is created or deleted during the crawl,
or shares its creation second with another (the API's order among those decides). The pipeline drops and counts
a product served twice, and warns when the API's count was not reached.

Mapping onto the catalogue:

``product_id``   ``code`` (the barcode)
``title``        ``product_name``, else its French or English variant, else ``generic_name``
``description``  generic name, ingredients and brands, each kept when present, joined by ". "
``category``     two levels, ``top-level > most specific`` (``Beverages and beverages preparations > Brut
                 champagnes``), see below
``image_url``    ``image_front_url``, else ``image_url``
extras           ``brands``, ``quantity``, ``lang``, ``countries``, ``url`` (the product page), and
                 ``category_tags``: every ``categories_hierarchy`` tag, comma-separated

The category. Open Food Facts categories form a graph, and ``categories_hierarchy`` is the set of the
product's tags with all their ancestors, over several branches (``... > Champagnes > Wines from france >
Brut champagnes``), listed from the top-level ones down: joined as one path, its levels would mean
different things from one product to the next, and the full paths would split into tiny classes. The
search API does not say which tag is whose parent, so the label keeps what the list does say: its first
tag (a top level: ``Beverages...``, ``Snacks``, ``Condiments``) and the most specific category,
``compared_to_category`` when the API gives one (the category Open Food Facts compares the product
within) else the last tag. ``--level 1`` is then the top level for every product, and the full path the
most specific category under it; all the tags stay in ``category_tags``. A tag's name is its identifier
made readable (``en:sparkling-wines`` → ``Sparkling wines``); a category unknown to Open Food Facts keeps
its language (``fr:truffes-au-champagne`` → ``Truffes au champagne``). Without tags, the free-text
``categories`` gives the two levels the same way, in the words and language the contributor typed
(``Boissons, Vins, Champagnes`` → ``Boissons > Champagnes``), spacing and capital letters normalised.

Texts are kept as the API gives them (ingredients carry ``<span class="allergen">`` markup): cleaning
is the text extractors' job, as for every other catalogue. A value of the wrong type (a list as a name,
a string as the hierarchy) is left out and reported in the product's warnings.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any, ClassVar
from urllib.parse import quote

from prodcat.collect.base import CollectedProduct, Collector, Page, PageFormatError, RecordError

#: half of a UTF-16 pair, which a JSON escape ("\ud83d") can carry alone and no UTF-8 file can hold
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")

#: the record fields requested (the API returns every field, hundreds, without this list)
FIELDS = (
    "code",
    "product_name",
    "product_name_fr",
    "product_name_en",
    "generic_name",
    "generic_name_fr",
    "generic_name_en",
    "ingredients_text",
    "ingredients_text_fr",
    "ingredients_text_en",
    "brands",
    "categories",
    "categories_hierarchy",
    "compared_to_category",
    "image_front_url",
    "image_url",
    "quantity",
    "lang",
    "countries",
    "url",
)

#: the result order paged in: a key that does not change for a product (see the module docstring)
SORT_BY = "created_t"


class OpenFoodFactsCollector(Collector):
    """Open Food Facts full-text search (see the module docstring for the field mapping)."""

    name: ClassVar[str] = "openfoodfacts"
    default_base_url: ClassVar[str] = "https://world.openfoodfacts.org"
    default_requests_per_second: ClassVar[float] = 10 / 60
    max_page_size: ClassVar[int] = 100
    extra_columns: ClassVar[tuple[str, ...]] = ("brands", "quantity", "lang", "countries", "url", "category_tags")

    def page_request(self, query: str, page: int, page_size: int) -> tuple[str, dict[str, str | int]]:
        params: dict[str, str | int] = {
            "search_terms": query,
            "search_simple": 1,
            "action": "process",
            "json": 1,
            "sort_by": SORT_BY,
            "page": page,
            "page_size": page_size,
            "fields": ",".join(FIELDS),
        }
        return f"{self.base_url}/cgi/search.pl", params

    def parse_page(self, payload: Any) -> Page:
        if not isinstance(payload, dict) or not isinstance(payload.get("products"), list):
            keys = ", ".join(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
            raise PageFormatError(f"expected a JSON object with a 'products' list; got {keys or 'an empty object'}")
        try:
            total = int(payload["count"])  # a string in some API versions
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: 1e400 or Infinity, read as inf
            total = None
        return Page(list(payload["products"]), total)

    def to_product(self, record: dict[str, Any]) -> CollectedProduct:
        fields = _Fields(record)
        code = fields.text("code")
        if not code:
            raise RecordError("code", "no barcode ('code'): the product cannot be identified or de-duplicated")
        generic_name = fields.localised("generic_name")
        title = fields.localised("product_name") or generic_name
        brands = _brands(fields.text("brands"))
        parts = (generic_name, fields.localised("ingredients_text"), brands)
        description = ". ".join(p.rstrip(". ") for p in parts if p)
        image_url = fields.text("image_front_url") or fields.text("image_url") or None
        if not title and not description and not image_url:
            raise RecordError("product_name", "no name, description, ingredients, brand or photo: nothing to classify")
        tags = fields.tags("categories_hierarchy")
        category = _category(tags, fields.text("compared_to_category"), fields.text("categories"))
        extras = {
            "brands": brands,
            "quantity": fields.text("quantity"),
            "lang": fields.text("lang"),
            "countries": fields.text("countries"),
            "url": fields.text("url") or f"{self.base_url}/product/{quote(code, safe='')}",
            "category_tags": ",".join(tags),
        }
        return CollectedProduct(code, title, description, category, image_url, extras, tuple(fields.warnings))


class _Fields:
    """A record's fields read as texts and tag lists; a value of the wrong type is noted in ``warnings``
    rather than silently taken for a missing one (the API sends ``null``, numbers, lists)."""

    def __init__(self, record: dict[str, Any]):
        self._record = record
        self.warnings: list[tuple[str, str]] = []

    def text(self, key: str) -> str:
        """The field stripped; a number as its text; ``""`` when missing or not text."""
        value = self._record.get(key)
        if isinstance(value, str):
            return _clean(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value) if value == value else ""  # NaN: as missing
        if value is not None:
            self._wrong_type(key, value, "a text")
        return ""

    def localised(self, key: str) -> str:
        """``key`` in the product's main language, else its French, else its English variant."""
        return next((text for k in (key, f"{key}_fr", f"{key}_en") if (text := self.text(k))), "")

    def tags(self, key: str) -> list[str]:
        """The non-blank text items of a list field."""
        value = self._record.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self._wrong_type(key, value, "a list of tags")
            return []
        if others := [item for item in value if not isinstance(item, str)]:
            self.warnings.append((key, f"{len(others)} item(s) that are not tags ignored: {reprlib.repr(others)}"))
        return [tag for item in value if isinstance(item, str) and (tag := _clean(item))]

    def _wrong_type(self, key: str, value: object, expected: str) -> None:
        found = f"a {type(value).__name__} ({reprlib.repr(value)})"
        self.warnings.append((key, f"{found} where {expected} was expected: ignored"))


def _clean(text: str) -> str:
    """``text`` stripped, a lone surrogate replaced by U+FFFD (writing it as UTF-8 would fail) and NUL removed
    (JSON's "\\u0000": the catalogue loader takes a NUL for a damaged file, and says so on every load)."""
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", "").strip())


def _brands(text: str) -> str:
    """``"Moët & Chandon,LVMH"`` → ``"Moët & Chandon, LVMH"``."""
    return ", ".join(b.strip() for b in text.split(",") if b.strip())


def _category(tags: list[str], compared_to: str, free_text: str) -> str | None:
    """``top level > most specific`` from the hierarchy tags, else from the free-text list (``None`` when
    neither gives a name); see the module docstring for why two levels."""
    from prodcat.catalog.loaders import join_path  # pandas: not with `prodcat collect`'s parser, which lists sources

    if tags:
        levels = [tags[0], compared_to or tags[-1]]
    else:
        names = [name for name in free_text.split(",") if name.strip()]
        levels = names[:1] + names[-1:]
    return join_path(dict.fromkeys(_tag_name(level) for level in levels))  # one level when both are the same


def _tag_name(tag: str) -> str:
    """``"en:sparkling-wines"`` → ``"Sparkling wines"``, ``" vins  effervescents"`` → ``"Vins effervescents"``:
    a tag's language prefix dropped and its hyphens as spaces, spaces collapsed, the first letter a capital."""
    language, colon, name = tag.strip().partition(":")
    name = name.replace("-", " ") if colon and len(language) == 2 else tag
    name = " ".join(name.split())
    return name[:1].upper() + name[1:]
