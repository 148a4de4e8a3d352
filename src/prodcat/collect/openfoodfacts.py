"""Open Food Facts: the public, key-free food products database (https://world.openfoodfacts.org).

Searched by full text through ``/cgi/search.pl?search_terms=...&json=1`` (the v2 ``/api/v2/search``
filters by tags only), 100 products a page. Its stated limit for searches is 10 requests a minute,
the default rate here, and it asks clients for a User-Agent naming the application and a contact.

Mapping onto the catalogue:

``product_id``   ``code`` (the barcode)
``title``        ``product_name``, else its French or English variant, else ``generic_name``
``description``  generic name, ingredients and brands, each kept when present, joined by ". "
``category``     ``categories_hierarchy`` tags (``en:sparkling-wines`` → ``Sparkling wines``) in the API's
                 order, parents first, so the path ends at the most specific category; else the free-text
                 ``categories``. Open Food Facts categories form a graph: a product in two branches
                 gets both, one after the other, in one path.
``image_url``    ``image_front_url``, else ``image_url``
extras           ``brands``, ``quantity``, ``lang``, ``countries``, ``url`` (the product page)

Texts are kept as the API gives them (ingredients carry ``<span class="allergen">`` markup): cleaning
is the text extractors' job, as for every other catalogue.
"""

from __future__ import annotations

from typing import Any, ClassVar

from prodcat.catalog.loaders import join_path
from prodcat.collect.base import CollectedProduct, Collector, Page, PageFormatError, RecordError

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
    "image_front_url",
    "image_url",
    "quantity",
    "lang",
    "countries",
    "url",
)


class OpenFoodFactsCollector(Collector):
    """Open Food Facts full-text search (see the module docstring for the field mapping)."""

    name: ClassVar[str] = "openfoodfacts"
    default_base_url: ClassVar[str] = "https://world.openfoodfacts.org"
    default_requests_per_second: ClassVar[float] = 10 / 60
    max_page_size: ClassVar[int] = 100
    extra_columns: ClassVar[tuple[str, ...]] = ("brands", "quantity", "lang", "countries", "url")

    def page_request(self, query: str, page: int, page_size: int) -> tuple[str, dict[str, str | int]]:
        params: dict[str, str | int] = {
            "search_terms": query,
            "search_simple": 1,
            "action": "process",
            "json": 1,
            "page": page,
            "page_size": page_size,
            "fields": ",".join(FIELDS),
        }
        return f"{self.base_url}/cgi/search.pl", params

    def parse_page(self, payload: Any) -> Page:
        if not isinstance(payload, dict) or not isinstance(payload.get("products"), list):
            keys = ", ".join(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
            raise PageFormatError(f"expected a JSON object with a 'products' list; got {keys or 'an empty object'}")
        records = [r for r in payload["products"] if isinstance(r, dict)]
        try:
            total = int(payload["count"])  # a string in some API versions
        except (KeyError, TypeError, ValueError):
            total = None
        return Page(records, total)

    def to_product(self, record: dict[str, Any]) -> CollectedProduct:
        code = _string(record.get("code"))
        if not code:
            raise RecordError("code", "no barcode ('code'): the product cannot be identified or de-duplicated")
        generic_name = _localised(record, "generic_name")
        title = _localised(record, "product_name") or generic_name
        parts = (generic_name, _localised(record, "ingredients_text"), _brands(record))
        description = ". ".join(p.rstrip(". ") for p in parts if p)
        image_url = _string(record.get("image_front_url")) or _string(record.get("image_url")) or None
        if not title and not description and not image_url:
            raise RecordError("product_name", "no name, description, ingredients, brand or photo: nothing to classify")
        extras = {
            "brands": _brands(record),
            "quantity": _string(record.get("quantity")),
            "lang": _string(record.get("lang")),
            "countries": _string(record.get("countries")),
            "url": _string(record.get("url")) or f"{self.base_url}/product/{code}",
        }
        return CollectedProduct(code, title, description, _category(record), image_url, extras)


def _string(value: object) -> str:
    """A text field stripped, ``""`` for missing or non-text values (the API sends ``null``, numbers, lists)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _localised(record: dict[str, Any], key: str) -> str:
    """``key`` in the product's main language, else its French, else its English variant."""
    return next((text for k in (key, f"{key}_fr", f"{key}_en") if (text := _string(record.get(k)))), "")


def _brands(record: dict[str, Any]) -> str:
    """``"Moët & Chandon,LVMH"`` → ``"Moët & Chandon, LVMH"``."""
    return ", ".join(b.strip() for b in _string(record.get("brands")).split(",") if b.strip())


def _category(record: dict[str, Any]) -> str | None:
    """The category path from the hierarchy tags, else from the free-text list (``None`` when neither)."""
    tags = record.get("categories_hierarchy")
    if isinstance(tags, list) and (names := [_tag_name(t) for t in tags if isinstance(t, str)]):
        return join_path(names)
    return join_path(_tag_name(c) for c in _string(record.get("categories")).split(","))


def _tag_name(tag: str) -> str:
    """``"en:sparkling-wines"`` → ``"Sparkling wines"``; a free-text name (``"Vins"``) is kept as it is."""
    language, colon, name = tag.strip().partition(":")
    if not colon or len(language) != 2:
        return tag.strip()
    name = name.replace("-", " ").strip()
    return name[:1].upper() + name[1:]
