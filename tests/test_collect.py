"""``prodcat collect``: Open Food Facts pages served from loopback (no internet here), end to end.

The payloads have the shape of ``/cgi/search.pl?json=1`` answers (``count``, ``page``, ``page_size``,
``products``) with the defects real ones have: missing fields, ``null``s, allergen markup in the
ingredients, non-Latin names, the same product on two pages, and photos that are not photos.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import urllib3
from PIL import Image
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from prodcat.catalog.loaders import MAX_TEXT_CHARS, load_catalog
from prodcat.cli import build_parser, main
from prodcat.collect import (
    HttpClient,
    NetworkError,
    OpenFoodFactsCollector,
    RateLimiter,
    RecordError,
    collect,
    http,
    writing,
)
from prodcat.collect import journal as journal_module
from prodcat.collect.pages import REFRESH_BEGAN, REFRESH_DIR
from prodcat.collect.photos import FAILED_PHOTOS_JOURNAL, PHOTO_SOURCES_JOURNAL
from prodcat.files import temporary_sibling
from prodcat.image import formats

PAGE_SIZE = 3
#: fast and impatient: a local server needs neither politeness nor long backoff
FAST = ["--rate", "1000", "--image-rate", "1000", "--backoff", "0", "--retries", "2"]
#: the host name of the API's stand-in (pytest-httpserver's ``url_for``), on loopback: named as the API's (its
#: ``--base-url``), it may serve photos, as a mirror the user names on a private network may
STAND_IN = "localhost"


def off_record(code: str, name: str, **fields: Any) -> dict[str, Any]:
    """A champagne as Open Food Facts returns it, with ``fields`` overriding (``None`` values stay ``null``)."""
    record = {
        "code": code,
        "product_name": name,
        "generic_name": "Champagne brut",
        "ingredients_text": 'Vin, <span class="allergen">sulfites</span>',
        "brands": "Moët & Chandon,LVMH",
        "categories": "Boissons, Boissons alcoolisées, Vins, Vins effervescents, Champagnes",
        "categories_hierarchy": ["en:beverages", "en:alcoholic-beverages", "en:wines", "en:sparkling-wines"],
        "quantity": "75 cl",
        "lang": "fr",
        "countries": "France",
        "url": f"https://world.openfoodfacts.org/product/{code}",
    }
    return record | fields


def jpeg_bytes(size: int = 64) -> bytes:
    """A noisy photo, so that its compressed data is mostly scan data past the header."""
    buffer = io.BytesIO()
    Image.effect_noise((size, size), 64).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def record_without_text(httpserver: HTTPServer, code: str) -> dict[str, Any]:
    """A product with neither a name nor a description, and a photo at ``/images/<code>.jpg``: nothing classifies it
    while its photo is not on disk."""
    return off_record(code, "", generic_name="", ingredients_text=None, brands=None,
                      image_front_url=httpserver.url_for(f"/images/{code}.jpg"))  # fmt: skip


def search_pages(products: list[dict[str, Any]], total: int | None = None) -> dict[int, dict[str, Any]]:
    """``products`` cut into JSON pages of :data:`PAGE_SIZE`, numbered from 1."""
    total = len(products) if total is None else total
    return {
        n // PAGE_SIZE + 1: {"count": total, "page": n // PAGE_SIZE + 1, "page_size": PAGE_SIZE, "skip": n,
                             "products": products[n : n + PAGE_SIZE]}
        for n in range(0, len(products), PAGE_SIZE)
    }  # fmt: skip


def serve_search(
    httpserver: HTTPServer,
    pages: dict[int, Any],
    failing: tuple[int, ...] = (),
    first_answers: dict[int, list[Response]] | None = None,
) -> None:
    """Answer ``/cgi/search.pl?page=N`` with ``pages[N]`` (an empty page past the end), HTTP 500 for ``failing``;
    a page in ``first_answers`` gets those answers first, one a request, then its JSON."""
    pending = {number: list(answers) for number, answers in (first_answers or {}).items()}

    def answer(request: Request) -> Response:
        number = int(request.args["page"])
        if number in failing:
            return Response("Internal Server Error", status=500)
        if pending.get(number):
            return pending[number].pop(0)
        page = pages.get(number, {"count": 0, "page": number, "page_size": PAGE_SIZE, "products": []})
        return Response(json.dumps(page), content_type="application/json")

    httpserver.expect_request("/cgi/search.pl").respond_with_handler(answer)


def search_requests(httpserver: HTTPServer) -> list[int]:
    """The page numbers asked for, in order (retries included)."""
    return [int(request.args["page"]) for request, _ in httpserver.log if request.path == "/cgi/search.pl"]


def press_ctrl_c_at_page(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    """Ctrl-C while the results page ``number`` is asked for (``monkeypatch.undo()`` lets go)."""
    get_json = HttpClient.get_json

    def interrupted(self: HttpClient, url: str, params: dict[str, Any], *args: Any) -> Any:
        if params["page"] == number:
            raise KeyboardInterrupt
        return get_json(self, url, params, *args)

    monkeypatch.setattr(HttpClient, "get_json", interrupted)


def run(httpserver: HTTPServer, out: Path, *options: str, query: str = "champagne") -> int:
    base = httpserver.url_for("/")
    return main(["collect", "--query", query, "--out", str(out), "--base-url", base, "--page-size",
                 str(PAGE_SIZE), *FAST, *options])  # fmt: skip


def refusal(
    httpserver: HTTPServer, out: Path, capsys: pytest.CaptureFixture[str], *options: str, query: str = "champagne"
) -> str:
    """What :func:`run` wrote to stderr as argparse refused its command line (exit 2)."""
    with pytest.raises(SystemExit) as refused:
        run(httpserver, out, *options, query=query)
    assert refused.value.code == 2
    return capsys.readouterr().err


CHAMPAGNES = [
    off_record("3185370000335", "Brut Impérial"),
    # no English-readable name, a category known only as free text, no brand, numbers for strings
    off_record(
        "4607001770014",
        "Советское шампанское",
        brands=None,
        categories_hierarchy=None,
        categories="Vins, Vins effervescents",
        generic_name="",
        ingredients_text=None,
        quantity=750,
    ),
    # only a French name, and no category at all: an unlabelled product
    off_record(
        "3049614222252",
        "",
        product_name_fr="Veuve Clicquot Carte Jaune, « Brut »",
        categories_hierarchy=[],
        categories="",
    ),
    off_record("3185370000335", "Brut Impérial"),  # page 2 repeats a product of page 1
    {"product_name": "Champagne sans code-barres"},  # cannot be identified: reported and skipped
    off_record("3258431210015", "Ruinart Blanc de Blancs", url=None),
    off_record("0000000000017", "Champagne rosé", categories_hierarchy=["en:sparkling-wines", "fr:champagnes-rosés"]),
    off_record("0000000000024", "Crémant d'Alsace"),
    off_record("0000000000031", "Blanc de noirs 日本"),
]


def test_record_mapping_keeps_text_and_builds_category_paths():
    collector = OpenFoodFactsCollector()
    product = collector.to_product(CHAMPAGNES[0])
    assert product.product_id == "3185370000335"
    assert product.title == "Brut Impérial"
    assert product.description == 'Champagne brut. Vin, <span class="allergen">sulfites</span>. Moët & Chandon, LVMH'
    assert product.category == "Beverages > Sparkling wines"
    assert product.extras["brands"] == "Moët & Chandon, LVMH"

    russian = collector.to_product(CHAMPAGNES[1])
    assert russian.title == "Советское шампанское"
    assert russian.description == ""
    assert russian.category == "Vins > Vins effervescents"  # free-text fallback
    assert russian.extras["quantity"] == "750"

    french = collector.to_product(CHAMPAGNES[2])
    assert french.title == "Veuve Clicquot Carte Jaune, « Brut »"
    assert french.category is None
    # a tag in another language keeps its name, accents included
    assert collector.to_product(CHAMPAGNES[6]).category == "Sparkling wines > Champagnes rosés"
    assert collector.to_product(CHAMPAGNES[5]).extras["url"] == f"{collector.base_url}/product/3258431210015"

    with pytest.raises(RecordError, match="barcode") as missing_code:
        collector.to_product(CHAMPAGNES[4])
    assert missing_code.value.field == "code"
    with pytest.raises(RecordError, match="nothing to classify"):
        collector.to_product({"code": "1", "product_name": None, "brands": " , "})


def test_the_category_is_the_top_level_and_the_most_specific_tag_with_every_tag_kept_beside():
    """``categories_hierarchy`` is the product's tags with all their ancestors, over several branches, not one
    path: the label is its first (top-level) tag and its most specific one, ``compared_to_category`` when given."""
    collector = OpenFoodFactsCollector()
    hierarchy = ["en:beverages", "en:alcoholic-beverages", "en:wines", "en:sparkling-wines", "en:french-wines",
                 "en:champagnes", "en:wines-from-france", "en:brut-champagnes"]  # fmt: skip
    product = collector.to_product(off_record("1", "Brut", categories_hierarchy=hierarchy))
    assert product.category == "Beverages > Brut champagnes"
    assert product.extras["category_tags"] == ",".join(hierarchy)
    compared = off_record("2", "Brut", categories_hierarchy=hierarchy, compared_to_category="en:champagnes")
    assert collector.to_product(compared).category == "Beverages > Champagnes"
    assert collector.to_product(off_record("3", "Eau", categories_hierarchy=["en:beverages"])).category == "Beverages"
    # the free-text fallback: its first and last names, capitalised and spaced alike whatever was typed
    typed = off_record("4", "Vin", categories_hierarchy=None, categories="boissons,  vins ,vins   effervescents")
    assert collector.to_product(typed).category == "Boissons > Vins effervescents"
    assert collector.to_product(typed).extras["category_tags"] == ""


def test_fields_of_the_wrong_type_are_left_out_and_reported():
    collector = OpenFoodFactsCollector()
    record = off_record("1", ["Champagne", "liste"], product_name_fr="Brut", categories_hierarchy="en:champagnes",
                        categories="Champagnes", quantity={"value": 75})  # fmt: skip
    product = collector.to_product(record)
    assert (product.title, product.category, product.extras["quantity"]) == ("Brut", "Champagnes", "")
    warnings = dict(product.warnings)
    assert list(warnings) == ["product_name", "categories_hierarchy", "quantity"]
    assert warnings["product_name"] == "a list (['Champagne', 'liste']) where a text was expected: ignored"
    assert warnings["categories_hierarchy"] == "a str ('en:champagnes') where a list of tags was expected: ignored"
    mixed = collector.to_product(off_record("2", "Brut", categories_hierarchy=["en:wines", 42, None, "en:champagnes"]))
    assert mixed.category == "Wines > Champagnes"
    assert mixed.warnings == (("categories_hierarchy", "2 item(s) that are not tags ignored: [42, None]"),)
    assert collector.to_product(CHAMPAGNES[0]).warnings == ()


def test_texts_with_line_breaks_of_any_kind_stay_in_their_product(httpserver, tmp_path):
    names = ["Old Mac\rline break", "Windows\r\nline break", "Unix\nline break"]
    serve_search(httpserver, search_pages([off_record(str(n), name) for n, name in enumerate(names)]))
    assert run(httpserver, tmp_path) == 0
    catalog = load_catalog(tmp_path / "products.csv")
    assert catalog.issues == [] and list(catalog.frame["product_id"]) == ["0", "1", "2"]
    assert [title.split() for title in catalog.frame["title"]] == [name.split() for name in names]


def test_a_nul_in_a_text_is_removed_not_left_for_the_loader_to_take_for_a_damaged_file(httpserver, tmp_path):
    """JSON's "\\u0000" in a name was written to products.csv as is, and every load of it then warned
    'products.csv: 1 line(s) hold NUL bytes (2), removed (a damaged copy?)'."""
    serve_search(
        httpserver, search_pages([off_record("1", "Brut\x00 Impérial", categories_hierarchy=["en:wi\x00nes"])])
    )
    assert run(httpserver, tmp_path) == 0
    catalog = load_catalog(tmp_path / "products.csv")
    assert catalog.issues == []
    assert catalog.frame.loc[0, ["title", "category"]].tolist() == ["Brut Impérial", "Wines"]


def test_a_lone_surrogate_is_replaced_and_the_fallback_product_page_quotes_the_barcode():
    collector = OpenFoodFactsCollector()
    product = collector.to_product(off_record("ab/12 34", "Champagne \ud83d half an emoji", url=None))
    assert product.title == "Champagne \ufffd half an emoji"  # "\ud83d" alone cannot be written as UTF-8
    assert product.extras["url"] == f"{collector.base_url}/product/ab%2F12%2034"


def test_collect_pages_until_max_products_and_writes_a_loadable_catalogue(httpserver, tmp_path):
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path, "--max-products", "4") == 0

    # 4 distinct products need page 2 (a duplicate and an unusable record there) but not page 3
    assert search_requests(httpserver) == [1, 2]
    user_agent = httpserver.log[0][0].headers["User-Agent"]
    assert user_agent.startswith("prodcat/") and "collection" in user_agent
    catalog = load_catalog(tmp_path / "products.csv")
    assert catalog.format == "csv"
    # the only loader remark: the product without a category is unlabelled (kept, for predict)
    assert [(issue.field, issue.product_id) for issue in catalog.issues] == [("category", "3049614222252")]
    frame = catalog.frame.set_index("product_id")
    assert list(frame.index) == ["3185370000335", "4607001770014", "3049614222252", "3258431210015"]
    assert frame.loc["4607001770014", "title"] == "Советское шампанское"
    assert frame.loc["3049614222252", "title"] == "Veuve Clicquot Carte Jaune, « Brut »"
    assert frame.loc["3185370000335", "description"] == (
        'Champagne brut. Vin, <span class="allergen">sulfites</span>. Moët & Chandon, LVMH'
    )
    assert frame.loc["3049614222252", "category"] is None
    assert frame.loc["3185370000335", "category"] == "Beverages > Sparkling wines"
    assert frame["image"].isna().all()  # no --images
    assert set(frame["source"]) == {"openfoodfacts"}

    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["stopped_by"] == "max_products" and report["total_matching"] == len(CHAMPAGNES)
    counts = report["counts"]
    assert (counts["products"], counts["duplicates"], counts["records_skipped"], counts["pages_fetched"]) == (
        4,
        1,
        1,
        2,
    )
    assert [(e["page"], e["record"], e["field"]) for e in report["errors"]] == [(2, 2, "code")]


def test_a_tilde_the_shell_left_in_out_is_the_home_folder(httpserver, tmp_path, monkeypatch):
    """--out=~/champagne (or a quoted path) collected into a folder named '~' in the working folder, where every
    other command's paths are under the home folder."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert run(httpserver, Path("~/champagne"), "--max-products", "2") == 0
    assert (tmp_path / "home" / "champagne" / "products.csv").is_file() and not (tmp_path / "~").exists()


def test_collect_stops_when_the_results_are_exhausted(httpserver, tmp_path):
    pages = search_pages(CHAMPAGNES)
    pages[2]["count"] = str(len(CHAMPAGNES))  # older API versions send the count as a string
    serve_search(httpserver, pages)
    assert run(httpserver, tmp_path, query="crémant d'Alsace") == 0
    assert search_requests(httpserver) == [1, 2, 3]  # count = 9 = 3 pages: no 4th request
    assert {request.args["search_terms"] for request, _ in httpserver.log} == {"crémant d'Alsace"}
    assert len(pd.read_csv(tmp_path / "products.csv", dtype=str)) == len(CHAMPAGNES) - 2
    assert json.loads((tmp_path / "collect.json").read_text())["stopped_by"] == "exhausted"


def test_an_api_serving_fewer_records_per_page_than_asked_is_read_to_its_total(httpserver, tmp_path):
    """The end of the results is the API's count reached by the records served, not pages x --page-size."""
    served = PAGE_SIZE - 1
    pages = {
        n // served + 1: {"count": len(CHAMPAGNES), "page": n // served + 1, "page_size": served,
                          "products": CHAMPAGNES[n : n + served]}
        for n in range(0, len(CHAMPAGNES), served)
    }  # fmt: skip
    serve_search(httpserver, pages)
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == list(range(1, len(pages) + 1))  # every page, and no further
    assert len(pd.read_csv(tmp_path / "products.csv", dtype=str)) == len(CHAMPAGNES) - 2
    assert json.loads((tmp_path / "collect.json").read_text())["stopped_by"] == "exhausted"


def test_rate_limited_answer_is_retried_and_a_failing_page_stops_cleanly(httpserver, tmp_path, capsys):
    httpserver.expect_oneshot_request("/cgi/search.pl").respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "0"}
    )
    serve_search(httpserver, search_pages(CHAMPAGNES), failing=(2,))
    assert run(httpserver, tmp_path) == 2

    # page 1: 429 then success; page 2: HTTP 500 on the first try and both retries
    assert search_requests(httpserver) == [1, 1, 2, 2, 2]
    error = capsys.readouterr().err
    assert "error: page 2:" in error and "HTTP 500" in error and "run the same command again to resume" in error
    assert "The API is failing or overloaded" in error and "network connection" not in error
    assert "Traceback" not in error
    assert len(pd.read_csv(tmp_path / "products.csv", dtype=str)) == 3  # page 1 is kept
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["stopped_by"] == "error" and "HTTP 500" in report["fatal_error"]


@pytest.mark.parametrize("count", [None, 40])
def test_an_api_repeating_the_same_page_is_not_followed_forever(httpserver, tmp_path, count):
    """The run stopped there said 'stopped_by: exhausted', as if the results had run out, and with the API's count,
    warned that the results 'moved between pages while paging'; it says 'paging_ignored', beside its error."""
    same_page = {"products": CHAMPAGNES[:PAGE_SIZE], "count": count}  # no count: the end is unknown
    serve_search(httpserver, {n: same_page for n in range(1, 100)})
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1, 2]
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["counts"]["products"] == PAGE_SIZE and "ignore paging" in report["errors"][-1]["message"]
    assert report["stopped_by"] == "paging_ignored" and report["warnings"] == []


def test_an_api_ignoring_both_the_page_number_and_the_page_size_is_not_followed_forever(httpserver, tmp_path):
    same_page = {"products": CHAMPAGNES[: PAGE_SIZE + 2]}  # more than asked for, and no count
    serve_search(httpserver, {n: same_page for n in range(1, 100)})
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1, 2]
    report = json.loads((tmp_path / "collect.json").read_text())
    assert "ignore paging" in report["errors"][-1]["message"] and report["stopped_by"] == "paging_ignored"


#: a page of records none of which is a product: no name, description, brand or photo, nothing to classify
NAMELESS = [
    off_record(f"30000000000{n}", "", generic_name="", ingredients_text=None, brands=None, image_url=None)
    for n in range(PAGE_SIZE)
]


def test_a_page_of_records_none_of_them_a_product_is_not_taken_for_an_api_ignoring_paging(httpserver, tmp_path):
    """Without a count, a full page that added no product was taken for 'a full page of products already collected
    (the API seems to ignore paging)', though none was collected before it: a page of records without a name or
    anything else to classify stopped the run there, the products of the pages after it never asked for. Served
    again as it was, such a page is still an API ignoring paging."""
    serve_search(httpserver, {1: {"products": NAMELESS}, 2: {"products": CHAMPAGNES[:1]}})
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1, 2]
    report = json.loads((tmp_path / "collect.json").read_text())
    assert (report["stopped_by"], report["counts"]["products"], report["counts"]["records_skipped"]) == (
        "exhausted",
        1,
        PAGE_SIZE,
    )
    assert not any("ignore paging" in error["message"] for error in report["errors"])

    httpserver.clear()
    serve_search(httpserver, {n: {"products": NAMELESS} for n in range(1, 100)})
    assert run(httpserver, tmp_path / "again") == 0
    assert search_requests(httpserver) == [1, 2]
    report = json.loads((tmp_path / "again" / "collect.json").read_text())
    assert report["stopped_by"] == "paging_ignored" and "ignore paging" in report["errors"][-1]["message"]


def test_a_run_stopped_by_paging_ignored_with_no_product_writes_an_empty_catalogue_and_says_so(
    httpserver, tmp_path, capsys
):
    """A finished run, as one whose results ran out: since 543fe2c it wrote no products.csv and said nothing of the
    products when the page served again held none, where 'exhausted' wrote an empty one and said so."""
    serve_search(httpserver, {n: {"products": NAMELESS} for n in range(1, 100)})
    assert run(httpserver, tmp_path) == 0
    assert json.loads((tmp_path / "collect.json").read_text())["stopped_by"] == "paging_ignored"
    assert pd.read_csv(tmp_path / "products.csv").empty
    assert (
        f"none of the {2 * PAGE_SIZE} results for 'champagne' on openfoodfacts could be used (see the errors): "
        f"{tmp_path / 'products.csv'} is empty"
    ) in capsys.readouterr().out


def test_results_that_moved_a_page_down_are_followed_to_the_apis_count(httpserver, tmp_path):
    """A first run kept page 1; by the resume, new products came ahead of it, so page 2 held page 1's products:
    the run stopped there, 'the API seems to ignore paging', with the rest of the results never asked for. With a
    count to stop at, only the page before served again as it was is taken for an API ignoring the page number."""
    old, new = ([off_record(f"{kind}{n}", f"Champagne {kind}{n}") for n in range(6)] for kind in "on")
    serve_search(httpserver, search_pages(old))
    assert run(httpserver, tmp_path, "--max-products", "3") == 0
    httpserver.clear()
    serve_search(httpserver, search_pages([*new[:3], old[2], old[0], old[1], *old[3:], *new[3:]]))  # order moved too
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [2, 3, 4]  # page 1 from disk
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["stopped_by"] == "exhausted" and report["errors"] == []
    assert report["counts"]["products"] == 9 and report["counts"]["duplicates"] == 3
    (warning,) = report["warnings"]
    assert "the API counts 12 results, but 3 of them were on no page read" in warning["message"]


def test_results_that_left_the_search_before_a_resume_are_warned_of(httpserver, tmp_path):
    """A first run kept pages 1 and 2; by the resume, a product of page 1 had left the results (deleted, or edited out
    of the query), so the products after it moved back a place and page 3 began a product later: the one moved onto
    page 2, read before, was skipped. The records read reached the API's new count, and the run said nothing."""
    products = [off_record(f"{n}", f"Champagne {n}") for n in range(9)]
    serve_search(httpserver, search_pages(products))
    assert run(httpserver, tmp_path, "--max-products", "6") == 0
    httpserver.clear()
    serve_search(httpserver, search_pages(products[1:]))
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [3]  # pages 1 and 2 from disk
    assert "6" not in pd.read_csv(tmp_path / "products.csv", dtype=str)["product_id"].tolist()  # the one skipped
    (warning,) = json.loads((tmp_path / "collect.json").read_text())["warnings"]
    assert warning["message"] == (
        "the API counted 9 results on a page read (one saved by an earlier run, or fetched earlier in this one) and 8 "
        "on the last: the results changed between the pages, and up to 1 product may have moved onto pages already "
        "read, skipped; a run with --refresh reads every page again"
    )
    assert run(httpserver, tmp_path, "--refresh") == 0
    assert pd.read_csv(tmp_path / "products.csv", dtype=str)["product_id"].tolist() == [f"{n}" for n in range(1, 9)]
    assert json.loads((tmp_path / "collect.json").read_text())["warnings"] == []


def test_a_page_that_is_never_json_is_an_error_naming_the_page_and_the_cause(httpserver, tmp_path, capsys):
    httpserver.expect_request("/cgi/search.pl").respond_with_data("<html>maintenance</html>", content_type="text/html")
    assert run(httpserver, tmp_path) == 2
    assert search_requests(httpserver) == [1, 1, 1]  # retried like a 5xx
    error = capsys.readouterr().err
    assert "error: page 1:" in error and "not JSON (text/html" in error and "nothing was collected" in error
    assert "something other than its results pages" in error and "network connection" not in error
    assert not (tmp_path / "products.csv").exists()
    assert not list((tmp_path / "pages").rglob("*.json"))  # an error page is never cached


def test_photos_are_checked_and_bad_ones_reported_then_resume_fetches_nothing_twice(httpserver, tmp_path):
    photos = {
        "good.jpg": (jpeg_bytes(), "image/jpeg"),
        "truncated.jpg": (jpeg_bytes(256)[:4000], "image/jpeg"),  # a download cut short, inside the scan data
        "notice.jpg": (b"Sorry, this image is not available.\n", "image/jpeg"),
    }
    for name, (data, kind) in photos.items():
        httpserver.expect_request(f"/images/{name}").respond_with_data(data, content_type=kind)
    httpserver.expect_request("/images/missing.jpg").respond_with_data("Not Found", status=404)
    httpserver.expect_request("/images/busy.jpg").respond_with_data("Busy", status=503)
    urls = {name: httpserver.url_for(f"/images/{name}") for name in [*photos, "missing.jpg", "busy.jpg"]}
    products = [
        off_record("1", "Good photo", image_front_url=urls["good.jpg"]),
        off_record("2", "Truncated photo", image_front_url=urls["truncated.jpg"]),
        off_record("3", "Text as a photo", image_front_url=urls["notice.jpg"]),
        off_record("4", "Photo gone", image_front_url=urls["missing.jpg"]),
        off_record("5", "No photo"),
        off_record("6", "Photo host busy", image_front_url=urls["busy.jpg"]),
    ]
    serve_search(httpserver, search_pages(products))
    assert run(httpserver, tmp_path, "--images") == 0

    catalog = load_catalog(tmp_path / "products.csv")
    assert catalog.issues == []
    frame = catalog.frame.set_index("product_id")
    assert frame.loc["1", "image"] == str(tmp_path / "images" / "1.jpeg")
    assert Path(frame.loc["1", "image"]).read_bytes() == photos["good.jpg"][0]
    assert frame.loc[["2", "3", "4", "5", "6"], "image"].isna().all()
    assert frame.loc["2", "image_url"] == urls["truncated.jpg"]  # the failed photo's address is kept
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["1.jpeg"]
    report = json.loads((tmp_path / "collect.json").read_text())
    failures = {e["product_id"]: e["message"] for e in report["errors"] if e["field"] == "image"}
    assert failures.keys() == {"2", "3", "4", "6"}
    assert "truncated or corrupt" in failures["2"]
    assert "not an image (content looks like text)" in failures["3"]
    assert "HTTP 404" in failures["4"]
    assert "HTTP 503" in failures["6"]
    assert report["counts"]["photos_downloaded"] == 1 and report["counts"]["with_photo"] == 1

    # a re-run reads the saved pages and the saved photo, and asks again only for the photo whose host was busy:
    # a 404 or a file that is not an image would fail the same way
    requests_before = len(httpserver.log)
    assert run(httpserver, tmp_path, "--images") == 0
    again = [request.path for request, _ in httpserver.log[requests_before:]]
    assert again == ["/images/busy.jpg"] * 3  # with its 2 retries
    rerun = json.loads((tmp_path / "collect.json").read_text())
    counts = rerun["counts"]
    assert counts["pages_from_cache"] == 2 and counts["pages_fetched"] == 0 and counts["photos_from_cache"] == 1
    assert counts["photos_failed_earlier"] == 3 and counts["photos_failed"] == 1
    assert {e["product_id"] for e in rerun["errors"]} == {"2", "3", "4", "6"}  # still listed
    assert load_catalog(tmp_path / "products.csv").frame.equals(catalog.frame)

    # without --images, the photos on disk stay linked to their products
    assert run(httpserver, tmp_path) == 0
    assert load_catalog(tmp_path / "products.csv").frame.equals(catalog.frame)

    # --refresh tries every failed photo again
    requests_before = len(httpserver.log)
    assert run(httpserver, tmp_path, "--images", "--refresh") == 0
    again = sorted(request.path for request, _ in httpserver.log[requests_before:] if request.path != "/cgi/search.pl")
    assert again == ["/images/busy.jpg"] * 3 + ["/images/missing.jpg", "/images/notice.jpg", "/images/truncated.jpg"]


def test_a_photo_whose_url_changed_is_fetched_again_and_the_old_one_kept_until_then(httpserver, tmp_path):
    """A refresh where a product's photo URL changed kept the photo fetched from the old URL: the new one was never
    fetched. It is now, replacing the old file once it is (a new type too); a failed fetch keeps the old photo."""
    old_photo, new_photo = jpeg_bytes(), io.BytesIO()
    Image.effect_noise((32, 32), 64).convert("RGB").save(new_photo, "PNG")

    def serve_photos(*names: str) -> None:
        httpserver.clear_all_handlers()
        for name, data in (("1.jpg", old_photo), ("2.jpg", old_photo), ("1-new.png", new_photo.getvalue())):
            httpserver.expect_request(f"/images/{name}").respond_with_data(data)
        httpserver.expect_request("/images/2-new.jpg").respond_with_data("Not Found", status=404)
        records = [off_record(str(n), f"Champagne {n}", image_front_url=httpserver.url_for(f"/images/{name}"))
                   for n, name in enumerate(names, start=1)]  # fmt: skip
        serve_search(httpserver, search_pages(records))

    serve_photos("1.jpg", "2.jpg")
    assert run(httpserver, tmp_path, "--images") == 0
    assert sorted(path.name for path in (tmp_path / "images").iterdir()) == ["1.jpeg", "2.jpeg"]
    (tmp_path / "photo_sources.json").unlink(missing_ok=True)  # as an older version left it: products.csv has the URLs

    serve_photos("1-new.png", "2-new.jpg")
    requests_before = len(httpserver.log)
    assert run(httpserver, tmp_path, "--images", "--refresh") == 0
    fetched = [request.path for request, _ in httpserver.log[requests_before:] if request.path != "/cgi/search.pl"]
    assert sorted(fetched) == ["/images/1-new.png", "/images/2-new.jpg"]
    frame = load_catalog(tmp_path / "products.csv").frame.set_index("product_id")
    assert Path(frame.loc["1", "image"]).read_bytes() == new_photo.getvalue()
    assert Path(frame.loc["2", "image"]).read_bytes() == old_photo  # the new one is gone: the old one stays
    assert sorted(path.name for path in (tmp_path / "images").iterdir()) == ["1.png", "2.jpeg"]
    report = json.loads((tmp_path / "collect.json").read_text())
    (error,) = report["errors"]
    assert error["product_id"] == "2" and error["message"].endswith(
        "HTTP 404 NOT FOUND; images/2.jpeg, fetched in an earlier run, is kept"
    )
    assert report["counts"]["photos_replaced"] == 1
    # 2's photo may be of any URL before: a refresh fetches it again
    assert json.loads((tmp_path / "photo_sources.json").read_text()) == {"1": httpserver.url_for("/images/1-new.png")}

    # the photo fetched is not fetched again, nor the one that failed for good
    requests_before = len(httpserver.log)
    assert run(httpserver, tmp_path, "--images") == 0
    assert httpserver.log[requests_before:] == []
    (error,) = json.loads((tmp_path / "collect.json").read_text())["errors"]
    assert error["message"].endswith("(in an earlier run; not fetched again, --refresh does); images/2.jpeg, fetched "
                                     "in an earlier run, is kept")  # fmt: skip


@pytest.mark.parametrize("record", ["missing", "unreadable"])
def test_a_photo_of_no_recorded_url_is_kept_by_a_resume_and_fetched_again_by_a_refresh(
    httpserver, tmp_path, caplog, record
):
    """A photo saved before photo_sources.json existed was taken for one of the URL in the earlier products.csv; but a
    run without --images (or an older --refresh) rewrites products.csv with the product's new URL and keeps the photo,
    which then passed for the new URL's and was never fetched again. A photo of no recorded URL is kept by a resume,
    recorded nowhere, and fetched again by --refresh. So is one recorded in a photo_sources.json that became
    unreadable, whose warning said that the photos on disk were taken for those of their products' URLs."""
    old_photo, new_photo = jpeg_bytes(), jpeg_bytes(32)
    sources = tmp_path / "photo_sources.json"

    def serve(photo: str) -> None:
        httpserver.clear_all_handlers()
        for name, data in (("old.jpg", old_photo), ("new.jpg", new_photo)):
            httpserver.expect_request(f"/images/{name}").respond_with_data(data, content_type="image/jpeg")
        serve_search(httpserver, search_pages([off_record("1", "Brut", image_front_url=httpserver.url_for(photo))]))

    def photo_requests() -> list[str]:
        return [request.path for request, _ in httpserver.log if request.path.startswith("/images/")]

    serve("/images/old.jpg")
    assert run(httpserver, tmp_path, "--images") == 0
    if record == "missing":
        sources.unlink()  # as an older version left the collection
    else:
        sources.write_text(sources.read_text()[:-2])  # cut short
    serve("/images/new.jpg")
    caplog.clear()
    assert run(httpserver, tmp_path, "--refresh") == 0  # products.csv names the new URL, the old photo kept
    assert pd.read_csv(tmp_path / "products.csv")["image_url"].tolist() == [httpserver.url_for("/images/new.jpg")]
    warnings = [entry.getMessage() for entry in caplog.records if "is unreadable" in entry.getMessage()]
    if record == "unreadable":
        (warning,) = warnings
        assert warning.startswith(f"{sources} is unreadable (") and warning.endswith(
            "): the URLs of the photos it records are unknown: a run keeps those photos as they are (for a product "
            "whose photo URL changed too), --refresh fetches them again"
        )
    else:
        assert warnings == []

    assert run(httpserver, tmp_path, "--images") == 0
    assert photo_requests() == ["/images/old.jpg"]  # the first run's: a resume fetches nothing
    assert (tmp_path / "images" / "1.jpeg").read_bytes() == old_photo
    # nor takes the photo for the new URL's (an unreadable file is replaced by the sources this run recorded: none)
    assert (json.loads(sources.read_text()) if sources.exists() else {}) == {}

    assert run(httpserver, tmp_path, "--images", "--refresh") == 0
    assert photo_requests() == ["/images/old.jpg", "/images/new.jpg"]
    assert (tmp_path / "images" / "1.jpeg").read_bytes() == new_photo
    assert json.loads(sources.read_text()) == {"1": httpserver.url_for("/images/new.jpg")}


#: the photo of every product of :func:`serve_champagnes_with_photos`
PHOTO = jpeg_bytes()


def serve_champagnes_with_photos(httpserver: HTTPServer, codes: list[str], failing: tuple[int, ...] = ()) -> str:
    """Serve the champagnes of these barcodes, in this order, each with the same photo (results pages ``failing``:
    HTTP 500); returns the photo's URL."""
    httpserver.clear()
    httpserver.expect_request("/images/photo.jpg").respond_with_data(PHOTO, content_type="image/jpeg")
    url = httpserver.url_for("/images/photo.jpg")
    records = [off_record(code, f"Champagne {code}", image_front_url=url) for code in codes]
    serve_search(httpserver, search_pages(records), failing=failing)
    return url


def test_photos_of_products_a_finished_run_no_longer_collects_are_removed_and_no_other_file(
    httpserver, tmp_path, capsys
):
    """A product no longer among the results kept its photo in images/ for good: nothing linked it, and nothing
    removed it. A finished run replacing products.csv now deletes the photos it saved for the products it dropped
    (recorded in photo_sources.json, or linked by the products.csv it replaces, as an older version left them), and
    nothing else: not a file of the user's, even named as a product's photo would be."""
    url = serve_champagnes_with_photos(httpserver, ["1", "2", "3"])
    assert run(httpserver, tmp_path, "--images") == 0
    images = tmp_path / "images"
    assert sorted(path.name for path in images.iterdir()) == ["1.jpeg", "2.jpeg", "3.jpeg"]
    sources = tmp_path / "photo_sources.json"
    sources.write_text(json.dumps({"1": url, "3": url}))  # 2's saved before the file existed: products.csv links it
    users = {"notes.txt": b"my notes", "4.jpeg": PHOTO}  # 4: no product of the collection
    for name, data in users.items():
        (images / name).write_bytes(data)

    serve_champagnes_with_photos(httpserver, ["1"])  # 2 and 3 left the API
    assert run(httpserver, tmp_path, "--refresh", "--allow-fewer") == 0
    assert sorted(path.name for path in images.iterdir()) == ["1.jpeg", "4.jpeg", "notes.txt"]
    assert {name: (images / name).read_bytes() for name in users} == users
    assert json.loads((tmp_path / "collect.json").read_text())["counts"]["orphan_photos_removed"] == 2
    assert json.loads(sources.read_text()) == {"1": url}
    assert "2 photo(s) of products no longer collected removed from" in capsys.readouterr().out
    assert load_catalog(tmp_path / "products.csv").frame["image"].map(lambda path: Path(path).name).tolist() == [
        "1.jpeg"
    ]


def test_a_photo_damaged_on_disk_since_it_was_saved_is_fetched_again(httpserver, tmp_path, capsys):
    """A photo emptied or cut short on disk after its download (a full disk, a sync tool, a crash of the file system)
    stayed linked to its product on every re-run, which took it for the one fetched: only deleting it helped. A run
    with --images now checks the photos it reuses as it checks a download, and fetches again those that no longer
    decode, saying so."""
    url = serve_champagnes_with_photos(httpserver, ["1", "2", "3"])
    assert run(httpserver, tmp_path, "--images") == 0
    images = tmp_path / "images"
    (images / "1.jpeg").write_bytes(b"")
    (images / "2.jpeg").write_bytes(PHOTO[: len(PHOTO) // 2])
    capsys.readouterr()

    requests_before = len(httpserver.log)
    assert run(httpserver, tmp_path, "--images") == 0
    fetched = [request.path for request, _ in httpserver.log[requests_before:] if request.path != "/cgi/search.pl"]
    assert fetched == ["/images/photo.jpg"] * 2
    assert {path.name: path.read_bytes() for path in images.iterdir()} == dict.fromkeys(
        ["1.jpeg", "2.jpeg", "3.jpeg"], PHOTO
    )
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["counts"]["photos_damaged"] == 2 and report["counts"]["photos_from_cache"] == 1
    warnings = {w["product_id"]: w["message"] for w in report["warnings"] if w["field"] == "image"}
    assert warnings.keys() == {"1", "2"}
    assert warnings["1"].startswith("images/1.jpeg, saved in an earlier run, does not decode (empty file (0 bytes))")
    assert warnings["2"].endswith("): removed, fetched again")
    assert "2 photo(s) saved in" in capsys.readouterr().out
    assert json.loads((tmp_path / "photo_sources.json").read_text()) == dict.fromkeys(["1", "2", "3"], url)

    # photos that decode are not fetched again
    requests_before = len(httpserver.log)
    assert run(httpserver, tmp_path, "--images") == 0
    assert [request.path for request, _ in httpserver.log[requests_before:]] == []


def test_a_saved_photo_over_the_size_limit_is_taken_for_damaged_without_being_read_whole(tmp_path, monkeypatch):
    """188fdf9 read each photo it reuses whole before its check (to tell its type): a file grown on disk past the
    photo size limit (another program's output under images/) was read into memory in full, then refused for its size
    anyway. Its type is told from its first bytes, its size from the file system: never read, removed, fetched again."""
    from prodcat.collect.photos import _removed_as_damaged
    from prodcat.collect.pipeline import CollectReport

    grown = tmp_path / "1.jpeg"
    grown.write_bytes(PHOTO + b"\0" * 5000)
    read_whole, read_bytes = [], Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda path: read_whole.append(path.name) or read_bytes(path))
    report = CollectReport("off", "champagne", "http://example.org", "2026-12-07T00:00:00Z")
    assert _removed_as_damaged("1", grown, max_bytes=len(PHOTO) + 100, report=report)
    assert read_whole == [] and not grown.exists() and report.counts["photos_damaged"] == 1
    # within the limit, a photo that decodes is kept
    kept = tmp_path / "2.jpeg"
    kept.write_bytes(PHOTO)
    assert not _removed_as_damaged("2", kept, max_bytes=len(PHOTO) + 100, report=report) and kept.exists()


@pytest.mark.skipif(not formats.avif_decoded(), reason="this Pillow does not encode AVIF")
def test_a_saved_photo_this_installation_does_not_decode_is_kept_not_taken_for_damaged(
    httpserver, tmp_path, monkeypatch
):
    """640296d took every saved photo that does not decode here for one damaged on disk: an AVIF photo collected
    with a Pillow that decodes AVIF (11.3 on), the collection re-run with an older one, was deleted, fetched again,
    refused for good ('an AVIF photo, which this Pillow does not decode') and its product left without a photo. Its
    bytes are as fetched: it is kept, as before 640296d, and not fetched again."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, "AVIF")
    httpserver.expect_request("/images/photo.avif").respond_with_data(buffer.getvalue(), content_type="image/avif")
    url = httpserver.url_for("/images/photo.avif")
    serve_search(httpserver, search_pages([off_record("1", "Champagne 1", image_front_url=url)]))
    assert run(httpserver, tmp_path, "--images") == 0
    saved = tmp_path / "images" / "1.avif"
    assert saved.read_bytes() == buffer.getvalue()

    monkeypatch.setattr(formats, "avif_decoded", lambda: False)
    requests_before = len(httpserver.log)
    assert run(httpserver, tmp_path, "--images") == 0
    assert [request.path for request, _ in httpserver.log[requests_before:] if request.path != "/cgi/search.pl"] == []
    assert saved.read_bytes() == buffer.getvalue()
    report = json.loads((tmp_path / "collect.json").read_text())
    assert "photos_damaged" not in report["counts"] and report["counts"]["photos_from_cache"] == 1
    assert (
        not (tmp_path / "failed_photos.json").exists()
        or json.loads((tmp_path / "failed_photos.json").read_text()) == {}
    )


def test_photo_sources_are_read_once_a_run(httpserver, tmp_path, monkeypatch):
    """A finished run removing photos read photo_sources.json three times: for the downloads, to find the photos of
    products no longer collected, and again to forget them."""
    serve_champagnes_with_photos(httpserver, ["1", "2"])
    assert run(httpserver, tmp_path, "--images") == 0
    read_json_object = journal_module._read_json_object
    read: list[str] = []

    def counted(path: Path, otherwise: str) -> dict[str, Any]:
        read.append(path.name)
        return read_json_object(path, otherwise)

    monkeypatch.setattr(journal_module, "_read_json_object", counted)
    serve_champagnes_with_photos(httpserver, ["1"])
    assert run(httpserver, tmp_path, "--images", "--refresh", "--allow-fewer") == 0
    assert json.loads((tmp_path / "collect.json").read_text())["counts"]["orphan_photos_removed"] == 1
    assert read.count("photo_sources.json") == 1


#: ``prodcat collect`` with the arguments given, killed (SIGKILL, as the OOM killer or ``kill -9`` do) as it asks for
#: the photo of product 3
_RUN_KILLED_AT_PHOTO_3 = """
import os, signal, sys
from prodcat.cli import main
from prodcat.collect import HttpClient
get_bytes = HttpClient.get_bytes
def killed_at_photo_3(self, url, *args):
    if url.endswith("/3.jpg"):
        os.kill(os.getpid(), signal.SIGKILL)
    return get_bytes(self, url, *args)
HttpClient.get_bytes = killed_at_photo_3
main(sys.argv[1:])
"""


def test_a_run_killed_while_downloading_photos_leaves_the_sources_of_those_it_saved_and_its_failures(
    httpserver, tmp_path
):
    """photo_sources.json was written once the photos were all downloaded (or Ctrl-C stopped them): a run killed
    outright in between left the photos it had saved of no recorded URL, kept by every resume without being
    recorded, and fetched again by --refresh. Each source is now recorded as its photo is saved. failed_photos.json
    was written the same way: the photos that failed for good before the kill were asked for again by its resume;
    each failure is now recorded as it happens too."""
    httpserver.expect_request("/images/1.jpg").respond_with_data(PHOTO, content_type="image/jpeg")
    httpserver.expect_request("/images/2.jpg").respond_with_data("Not Found", status=404)
    httpserver.expect_request("/images/3.jpg").respond_with_data(PHOTO, content_type="image/jpeg")
    urls = {code: httpserver.url_for(f"/images/{code}.jpg") for code in "123"}
    serve_search(httpserver, search_pages([off_record(code, f"Champagne {code}", image_front_url=url)
                                           for code, url in urls.items()]))  # fmt: skip
    arguments = ["collect", "--query", "champagne", "--out", str(tmp_path), "--base-url", httpserver.url_for("/"),
                 "--page-size", str(PAGE_SIZE), *FAST, "--images"]  # fmt: skip
    killed = subprocess.run([sys.executable, "-c", _RUN_KILLED_AT_PHOTO_3, *arguments], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    assert sorted(path.name for path in (tmp_path / "images").iterdir()) == ["1.jpeg"]
    journals = [tmp_path / PHOTO_SOURCES_JOURNAL, tmp_path / FAILED_PHOTOS_JOURNAL]
    for journal in journals:
        with journal.open("a") as cut:
            cut.write('["3", ')  # as a kill while a line is appended leaves it: the next one is not lost

    assert main(arguments) == 0
    assert [request.path for request, _ in httpserver.log if request.path.startswith("/images/")] == [
        "/images/1.jpg",
        "/images/2.jpg",
        "/images/3.jpg",
    ]
    assert json.loads((tmp_path / "photo_sources.json").read_text()) == {"1": urls["1"], "3": urls["3"]}
    (failure,) = json.loads((tmp_path / "collect.json").read_text())["errors"]
    assert failure["product_id"] == "2" and failure["message"].endswith(
        "HTTP 404 NOT FOUND (in an earlier run; not fetched again, --refresh does)"
    )
    assert json.loads((tmp_path / "failed_photos.json").read_text()).keys() == {"2"}
    assert not any(journal.exists() for journal in journals)  # folded into their JSON files


def test_photos_of_products_an_unfinished_run_has_not_reached_are_kept_for_its_resume(httpserver, tmp_path):
    """A run stopped before the end of the results writes the products it has, without those it has not reached yet:
    their photos stay, and its resume links them again without fetching them."""
    serve_champagnes_with_photos(httpserver, ["1", "2"])
    assert run(httpserver, tmp_path, "--images") == 0
    serve_champagnes_with_photos(httpserver, ["1", "3", "4", "2"], failing=(2,))  # 2 moved to page 2, which fails
    assert run(httpserver, tmp_path, "--images", "--refresh") == 2
    assert set(pd.read_csv(tmp_path / "products.csv", dtype=str)["product_id"]) == {"1", "3", "4"}
    assert (tmp_path / "images" / "2.jpeg").read_bytes() == PHOTO

    serve_champagnes_with_photos(httpserver, ["1", "3", "4", "2"])
    assert run(httpserver, tmp_path, "--images", "--refresh") == 0
    assert [request.path for request, _ in httpserver.log if request.path.startswith("/images/")] == []
    frame = load_catalog(tmp_path / "products.csv").frame.set_index("product_id")
    assert Path(frame.loc["2", "image"]).read_bytes() == PHOTO


def test_a_product_whose_name_is_markup_or_punctuation_alone_counts_as_without_text(httpserver, tmp_path):
    """A product named '<p>&nbsp;</p>' or '...' with no description was written to products.csv as having a text
    (its name not blank), though the loader and the models read no text in it: with no photo, nothing classifies it."""
    blank = {"generic_name": "", "ingredients_text": None, "brands": None}
    products = [
        off_record("1", "Brut Impérial"),
        off_record("2", "<p>&nbsp;</p>", **blank),
        off_record("3", "...", **blank),
    ]
    serve_search(httpserver, search_pages(products))
    assert run(httpserver, tmp_path) == 0
    assert pd.read_csv(tmp_path / "products.csv", dtype=str)["product_id"].tolist() == ["1"]
    assert json.loads((tmp_path / "collect.json").read_text())["counts"]["left_out_without_text_or_photo"] == 2


def test_a_product_without_text_whose_photo_fails_is_left_out_until_its_photo_is_fetched(httpserver, tmp_path, capsys):
    """A product with neither a name nor a description whose photo failed stayed in products.csv with nothing to
    classify it from. It is left out, listed with the reason, and the next run that fetches its photo writes it."""
    photo_only = record_without_text(httpserver, "2")
    serve_search(httpserver, search_pages([off_record("1", "Brut Impérial"), photo_only]))
    httpserver.expect_request("/images/2.jpg").respond_with_data("Busy", status=503)
    assert run(httpserver, tmp_path, "--images") == 0
    assert pd.read_csv(tmp_path / "products.csv", dtype=str)["product_id"].tolist() == ["1"]
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["counts"]["products"] == 1 and report["counts"]["left_out_without_text_or_photo"] == 1
    assert [(e["product_id"], e["field"]) for e in report["errors"]] == [("2", "image"), ("2", "product")]
    assert report["errors"][1]["message"] == (
        "no name or description, and no photo: nothing to classify it from; left out of products.csv until its photo "
        "is fetched"
    )
    assert (
        f"1 product(s) without a name or description, nor a photo on disk, left out of {tmp_path / 'products.csv'} "
        "(see the errors): run the same command again to fetch 1 photo not fetched yet (a server error, a timeout, a "
        "host not reached, Ctrl-C)"
    ) in capsys.readouterr().out

    httpserver.clear_all_handlers()
    serve_search(httpserver, search_pages([off_record("1", "Brut Impérial"), photo_only]))
    httpserver.expect_request("/images/2.jpg").respond_with_data(PHOTO, content_type="image/jpeg")
    assert run(httpserver, tmp_path, "--images") == 0
    frame = load_catalog(tmp_path / "products.csv").frame.set_index("product_id")
    assert Path(frame.loc["2", "image"]).read_bytes() == PHOTO
    assert json.loads((tmp_path / "collect.json").read_text())["errors"] == []


def test_the_products_left_out_for_want_of_a_photo_are_told_the_step_that_fetches_it(httpserver, tmp_path, capsys):
    """The summary of the products left out for want of a text or photo said to 'run the same command with --images
    (and --refresh for a photo that failed for good)' whatever became of their photos: to a run that used --images,
    of a photo that failed for a while (which a plain re-run fetches), and of a product with no photo to fetch. It
    names the step that fetches each photo now, counted."""
    markup_only = off_record("4", "<p>&nbsp;</p>", generic_name="", ingredients_text=None, brands=None)
    products = [off_record("1", "Brut Impérial"), *(record_without_text(httpserver, c) for c in "23"), markup_only]
    serve_search(httpserver, search_pages(products))
    httpserver.expect_request("/images/2.jpg").respond_with_data("Busy", status=503)
    httpserver.expect_request("/images/3.jpg").respond_with_data("Gone", status=404)
    left_out = (
        f"3 product(s) without a name or description, nor a photo on disk, left out of {tmp_path / 'products.csv'} "
        "(see the errors): "
    )
    no_photo = "1 with no photo to fetch cannot be written"
    assert run(httpserver, tmp_path) == 0
    assert f"{left_out}run the same command with --images to fetch 2 photos; {no_photo}\n" in capsys.readouterr().out
    assert run(httpserver, tmp_path, "--images") == 0
    assert (
        f"{left_out}run the same command again to fetch 1 photo not fetched yet (a server error, a timeout, a host not "
        f"reached, Ctrl-C); add --refresh to fetch again 1 photo refused for good (404, not an image, too large); "
        f"{no_photo}\n"
    ) in capsys.readouterr().out
    errors = {e["product_id"]: e["message"] for e in json.loads((tmp_path / "collect.json").read_text())["errors"]}
    assert errors["4"] == "no name or description, and no photo: nothing to classify it from; left out of products.csv"


def test_a_run_with_images_stopped_before_its_photos_says_to_run_again(httpserver, tmp_path, monkeypatch, capsys):
    """Ctrl-C while a run with --images read the results, before any photo was fetched: the products left out for want
    of a text or photo were told to 'run the same command with --images', which it had; a re-run fetches them."""
    products = [record_without_text(httpserver, "2"), *(off_record(str(n), f"Champagne {n}") for n in range(3, 7))]
    serve_search(httpserver, search_pages(products))
    httpserver.expect_request("/images/2.jpg").respond_with_data(PHOTO, content_type="image/jpeg")
    press_ctrl_c_at_page(monkeypatch, 2)
    assert run(httpserver, tmp_path, "--images") == 130
    assert (
        "(see the errors): run the same command again to fetch 1 photo not fetched yet (a server error, a timeout, a "
        "host not reached, Ctrl-C)\n"
    ) in capsys.readouterr().out
    monkeypatch.undo()
    assert run(httpserver, tmp_path, "--images") == 0
    assert Path(load_catalog(tmp_path / "products.csv").frame.set_index("product_id").loc["2", "image"]).is_file()


def test_photos_of_hosts_that_are_not_public_are_refused_redirects_included(httpserver, tmp_path):
    """An API's photo URL, or a photo's redirect, to a loopback or private address was fetched (and a photo saved
    from it): an answer could have this machine fetch its own services. Now refused, and recorded as a failed photo
    with why (not for good: no request reached the host, a re-run checks it again); the API's own host, named by
    --base-url (here the stand-in, on loopback), still serves photos."""
    photo = jpeg_bytes()
    httpserver.expect_request("/images/good.jpg").respond_with_data(photo, content_type="image/jpeg")
    loopback = f"http://127.0.0.1:{httpserver.port}/images/good.jpg"  # the same server, by a host the API names
    httpserver.expect_request("/images/moved.jpg").respond_with_data("", status=302, headers={"Location": loopback})
    products = [
        off_record("1", "Photo of the API's host", image_front_url=httpserver.url_for("/images/good.jpg")),
        off_record("2", "Photo on loopback", image_front_url=loopback),
        off_record("3", "Photo redirected to loopback", image_front_url=httpserver.url_for("/images/moved.jpg")),
    ]
    serve_search(httpserver, search_pages(products))
    assert run(httpserver, tmp_path, "--images") == 0

    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["1.jpeg"]
    report = json.loads((tmp_path / "collect.json").read_text())
    failures = {e["product_id"]: e["message"] for e in report["errors"] if e["field"] == "image"}
    assert failures == {
        "2": f"{loopback}: refused: 127.0.0.1 is not a public address: a photo is fetched from a public host only",
        "3": f"{products[2]['image_front_url']}: refused: redirected to {loopback}: 127.0.0.1 is not a public "
        "address: a photo is fetched from a public host only",
    }
    assert report["counts"]["photos_downloaded"] == 1 and report["counts"]["photos_failed"] == 2
    assert [request.path for request, _ in httpserver.log].count("/images/good.jpg") == 1
    # not a failure for good: no request reached the host, and a run that allows it fetches it
    assert not (tmp_path / "failed_photos.json").exists()


def test_a_run_checks_each_photo_host_once_and_the_next_run_checks_again(httpserver, tmp_path, monkeypatch):
    """Each photo, and each redirect, resolved its host again to check it was public: a DNS lookup per photo, the
    same host's thousands of times in a run. A host is checked once per run now, its verdict kept for the run's other
    photos and redirects (a refusal included); the next run checks again, as an address may have changed."""
    real_check = http.non_public_reason
    checked: list[str | None] = []

    def check(url: str) -> str | None:  # 127.0.0.1 stands for a public host; 127.0.0.2 is refused, as it is
        checked.append(http.host_of(url))
        return None if http.host_of(url) == "127.0.0.1" else real_check(url)

    monkeypatch.setattr(http, "non_public_reason", check)
    public, private = (f"http://127.0.0.{n}:{httpserver.port}/images" for n in (1, 2))
    for name in ("a", "b"):
        httpserver.expect_request(f"/images/{name}.jpg").respond_with_data(jpeg_bytes(), content_type="image/jpeg")
    httpserver.expect_request("/images/moved.jpg").respond_with_data("", status=302, headers={"Location": "a.jpg"})
    urls = [f"{public}/a.jpg", f"{public}/b.jpg", f"{public}/moved.jpg", f"{private}/a.jpg", f"{private}/b.jpg"]
    products = [off_record(str(n), f"Champagne {n}", image_front_url=url) for n, url in enumerate(urls, 1)]
    serve_search(httpserver, search_pages(products))
    assert run(httpserver, tmp_path, "--images") == 0

    assert sorted(checked) == ["127.0.0.1", "127.0.0.2"]  # 4 and 2 lookups before: photos and a redirect
    report = json.loads((tmp_path / "collect.json").read_text())
    failures = {e["product_id"]: e["message"] for e in report["errors"] if e["field"] == "image"}
    assert failures == {
        str(n): f"{urls[n - 1]}: refused: 127.0.0.2 is not a public address: a photo is fetched from a public host only"
        for n in (4, 5)
    }
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["1.jpeg", "2.jpeg", "3.jpeg"]

    checked.clear()
    assert run(httpserver, tmp_path, "--images", "--refresh") == 0  # the refused photos tried again
    assert checked == ["127.0.0.2"]


def test_a_photo_host_whose_name_could_not_be_resolved_is_checked_again_at_its_next_photo(
    httpserver, tmp_path, monkeypatch
):
    """A lookup that failed (a DNS hiccup) at a host's first photo was kept as the host's verdict, as a public host's:
    its every later photo and redirect went unchecked for the run, though the name now resolved to loopback. Only a
    lookup that answered is kept now: the host is looked up again at its next photo, and refused."""
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:  # photos.example: down once, then on loopback
        if host != "photos.example":
            return real_getaddrinfo(host, *args, **kwargs)
        lookups.append(host)
        if len(lookups) == 1:
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real_getaddrinfo("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in ("a", "b"):
        httpserver.expect_request(f"/images/{name}.jpg").respond_with_data(jpeg_bytes(), content_type="image/jpeg")
    urls = [f"http://photos.example:{httpserver.port}/images/{name}.jpg" for name in ("a", "b")]
    products = [off_record(str(n), f"Champagne {n}", image_front_url=url) for n, url in enumerate(urls, 1)]
    serve_search(httpserver, search_pages(products))
    assert run(httpserver, tmp_path, "--images") == 0

    report = json.loads((tmp_path / "collect.json").read_text())
    failures = {e["product_id"]: e["message"] for e in report["errors"] if e["field"] == "image"}
    assert failures == {
        "2": f"{urls[1]}: refused: 127.0.0.1 is not a public address (photos.example resolves to 127.0.0.1): a photo "
        "is fetched from a public host only"
    }
    # the first photo, its name left to the connection (which resolved it): fetched, as when nothing is remembered
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["1.jpeg"]


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://127.0.0.1/a.jpg", "127.0.0.1"),
        ("http://localhost:8080/a.jpg", "127.0.0.1 (localhost resolves to 127.0.0.1)"),
        ("http://[::1]/a.jpg", "::1"),
        ("http://[::ffff:10.0.0.1]/a.jpg", "10.0.0.1 (::ffff:10.0.0.1 resolves to 10.0.0.1)"),
        ("http://192.168.1.20/a.jpg", "192.168.1.20"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),  # a cloud's metadata service
        ("http://100.64.0.1/a.jpg", "100.64.0.1"),
        ("http://0.0.0.0/a.jpg", "0.0.0.0"),
        ("https://8.8.8.8/a.jpg", None),
        ("not a url", None),
    ],
)
def test_a_photo_host_is_public_only_when_each_of_its_addresses_is(url, refused):
    reason = http.non_public_reason(url)
    if refused is None:
        assert reason is None
    else:
        address, _, resolved = refused.partition(" ")
        at = f" {resolved}" if resolved else ""
        assert reason == f"{address} is not a public address{at}: a photo is fetched from a public host only"


def test_photos_above_the_size_limit_are_refused_while_downloading(httpserver, tmp_path):
    photo = jpeg_bytes(256)
    httpserver.expect_request("/images/large.jpg").respond_with_data(photo, content_type="image/jpeg")
    serve_search(
        httpserver,
        search_pages([off_record("1", "Large photo", image_front_url=httpserver.url_for("/images/large.jpg"))]),
    )
    client = HttpClient("test", 1000.0, retries=0, private_hosts=[STAND_IN])
    collector = OpenFoodFactsCollector(httpserver.url_for("/"))
    report = collect(collector, "champagne", tmp_path, client, image_client=client, max_image_bytes=len(photo) - 1)
    assert [(e["product_id"], e["field"]) for e in report.errors] == [("1", "image")]
    assert f"larger than the limit of {len(photo) - 1} bytes" in report.errors[0]["message"]
    assert load_catalog(tmp_path / "products.csv").frame["image"].isna().all()
    assert not list((tmp_path / "images").iterdir())


def test_photos_of_a_host_that_cannot_be_reached_are_not_tried_one_by_one(
    httpserver, tmp_path, caplog, capsys, monkeypatch
):
    """The network lost while the photos download: each photo spent its retries and connection timeouts in turn
    (hours for a few thousand photos, a warning per attempt). Once its host cannot be reached, a host's other
    photos are not tried in this run; another host's are, and a re-run tries them all again."""
    monkeypatch.setattr(http, "non_public_reason", lambda url: None)  # the closed port on loopback: a public host
    with socket.socket() as closed:  # bound, never listening: connections to it are refused
        closed.bind(("127.0.0.1", 0))
        down = f"127.0.0.1:{closed.getsockname()[1]}"
        httpserver.expect_request("/images/up.jpg").respond_with_data(jpeg_bytes(), content_type="image/jpeg")
        products = [off_record(str(n), f"Champagne {n}", image_front_url=f"http://{down}/{n}.jpg") for n in (1, 2, 3)]
        products.insert(1, off_record("9", "Champagne 9", image_front_url=httpserver.url_for("/images/up.jpg")))
        serve_search(httpserver, search_pages(products))
        assert run(httpserver, tmp_path, "--images") == 0

        report = json.loads((tmp_path / "collect.json").read_text())
        errors = {e["product_id"]: e["message"] for e in report["errors"]}
        assert errors.keys() == {"1", "2", "3"} and "(gave up after 2 retries)" in errors["1"]
        reason = errors["1"].removeprefix(f"http://{down}/1.jpg: ")
        assert reason.startswith("unreachable (") and errors["2"] == errors["3"] == (
            f"not tried: {down} could not be reached for the photo of product 1 ({reason}); run the same command "
            "again to fetch it"
        )
        counts = report["counts"]
        assert (counts["photos_failed"], counts["photos_not_tried"], counts["photos_downloaded"]) == (1, 2, 1)
        assert sum("Connection refused" in r.message for r in caplog.records) == 3  # one photo's attempts
        out = capsys.readouterr().out
        assert "2 photo(s) not tried, their host being unreachable or rate limiting: run the same command again" in out

        caplog.clear()
        assert run(httpserver, tmp_path, "--images") == 0  # nothing remembered as failed for good
        assert sum("Connection refused" in r.message for r in caplog.records) == 3
        assert json.loads((tmp_path / "collect.json").read_text())["counts"]["photos_from_cache"] == 1


def test_photos_of_a_host_that_keeps_answering_too_many_requests_are_not_tried_one_by_one(httpserver, tmp_path, capsys):
    """A photo host answering 429 to every request had each photo spend its own retries, each waiting the host's
    window (60 s without Retry-After): 4 minutes a photo, days for a thousand. Once a photo has spent them, the host's
    other photos are not tried in this run, as those of a host that cannot be reached."""
    limited = HTTPServer()  # a photo host apart from the API's, which serves product 9's photo
    limited.expect_request("/photo.jpg").respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "0"}
    )
    limited.start()
    try:
        httpserver.expect_request("/images/up.jpg").respond_with_data(jpeg_bytes(), content_type="image/jpeg")
        products = [off_record(n, f"Champagne {n}", image_front_url=limited.url_for("/photo.jpg")) for n in "123"]
        products.insert(1, off_record("9", "Champagne 9", image_front_url=httpserver.url_for("/images/up.jpg")))
        serve_search(httpserver, search_pages(products))
        assert run(httpserver, tmp_path, "--images") == 0
        assert len(limited.log) == 3  # product 1's photo: the first attempt and its 2 retries
    finally:
        limited.stop()
    report = json.loads((tmp_path / "collect.json").read_text())
    errors = {e["product_id"]: e["message"] for e in report["errors"]}
    host = f"localhost:{limited.port}"
    assert errors.keys() == {"1", "2", "3"} and errors["1"].endswith("(gave up after 2 retries)")
    reason = errors["1"].removeprefix(f"{limited.url_for('/photo.jpg')}: ")
    not_tried = (
        f"not tried: {host} kept answering 'too many requests' for the photo of product 1 ({reason}); run the same "
        "command again to fetch it"
    )
    assert errors["2"] == errors["3"] == not_tried
    counts = report["counts"]
    assert (counts["photos_failed"], counts["photos_not_tried"], counts["photos_downloaded"]) == (1, 2, 1)
    out = capsys.readouterr().out
    assert "2 photo(s) not tried, their host being unreachable or rate limiting: run the same command again" in out


def test_resume_after_a_failure_continues_from_the_failed_page(httpserver, tmp_path):
    serve_search(httpserver, search_pages(CHAMPAGNES), failing=(2,))
    assert run(httpserver, tmp_path) == 2
    httpserver.clear()
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [2, 3]  # page 1 came from disk
    assert len(load_catalog(tmp_path / "products.csv")) == len(CHAMPAGNES) - 2
    assert run(httpserver, tmp_path, "--refresh") == 0
    assert search_requests(httpserver) == [2, 3, 1, 2, 3]
    # a saved page damaged on disk since is asked for again, not a crash
    (saved,) = (tmp_path / "pages").rglob("page-0002.json")
    saved.write_text('{"count": 9, "products": [')
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [2, 3, 1, 2, 3, 2]


def serve_results(httpserver: HTTPServer, records: list[Any], served_per_page: int | None = None) -> None:
    """Answer ``/cgi/search.pl`` with ``records`` paged as each request's ``page`` and ``page_size`` ask (an API
    serving at most ``served_per_page`` records a page pages by that size, whatever was asked)."""

    def answer(request: Request) -> Response:
        number, size = int(request.args["page"]), int(request.args["page_size"])
        size = min(size, served_per_page or size)
        page = records[(number - 1) * size : number * size]
        return json_response({"count": len(records), "page": number, "page_size": size, "products": page})

    httpserver.expect_request("/cgi/search.pl").respond_with_handler(answer)


def search_requests_and_sizes(httpserver: HTTPServer) -> list[tuple[int, int]]:
    return [(int(r.args["page"]), int(r.args["page_size"])) for r, _ in httpserver.log if r.path == "/cgi/search.pl"]


def test_results_are_paged_in_an_order_that_popularity_does_not_move(httpserver, tmp_path):
    """Without a sort_by the API pages by popularity, which moves with every scan: a product crossing a page
    boundary between two requests was served twice or never."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path) == 0
    assert [request.args.get("sort_by") for request, _ in httpserver.log] == ["created_t"] * 3


@pytest.mark.parametrize(("page_size", "fetched"), [(2, [(4, 2), (5, 2)]), (4, [(2, 4), (3, 4)])])
def test_a_resume_at_another_page_size_keeps_the_pages_saved(httpserver, tmp_path, page_size, fetched):
    """--page-size changed on a resumed crawl started it from scratch: the pages saved were found by their number
    at the earlier size only. A page is now cut from the records saved at another size when they hold it all."""
    serve_results(httpserver, CHAMPAGNES)
    assert run(httpserver, tmp_path, "--max-products", "4") == 0  # pages 1 and 2 of 3: records 1 to 6
    assert search_requests_and_sizes(httpserver) == [(1, 3), (2, 3)]
    httpserver.clear()
    serve_results(httpserver, CHAMPAGNES)
    assert run(httpserver, tmp_path, "--page-size", str(page_size)) == 0
    assert search_requests_and_sizes(httpserver) == fetched  # only the pages with records not saved
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["stopped_by"] == "exhausted" and [error["field"] for error in report["errors"]] == ["code"]
    counts = report["counts"]
    assert (counts["products"], counts["duplicates"], counts["records"]) == (7, 1, len(CHAMPAGNES))
    assert run(httpserver, tmp_path / "at_once") == 0
    at_once = load_catalog(tmp_path / "at_once" / "products.csv").frame
    assert load_catalog(tmp_path / "products.csv").frame.equals(at_once)


def test_pages_saved_from_an_api_serving_fewer_records_than_asked_are_not_cut_into_other_sizes(httpserver, tmp_path):
    """Their records' positions are not those of the page number and size asked: the pages are asked for again."""
    serve_results(httpserver, CHAMPAGNES, served_per_page=2)
    assert run(httpserver, tmp_path, "--max-products", "3") == 0
    assert search_requests_and_sizes(httpserver) == [(1, 3), (2, 3)]  # 2 records a page
    httpserver.clear()
    serve_results(httpserver, CHAMPAGNES)
    assert run(httpserver, tmp_path, "--page-size", "2") == 0
    assert search_requests_and_sizes(httpserver) == [(n, 2) for n in range(1, 6)]
    assert json.loads((tmp_path / "collect.json").read_text())["counts"]["products"] == 7


def test_an_output_folder_holding_another_catalogue_is_refused_not_overwritten(httpserver, tmp_path, capsys):
    """--out into a folder holding a user's own products.csv, or another query's collection, replaced that
    catalogue without a word, and into a Flipkart folder wrote among its files (--out naming a file failed with
    '[Errno 17] File exists')."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    own = tmp_path / "mine" / "products.csv"
    own.parent.mkdir()
    own.write_text("product_id,title,description,image,category\nA1,My mug,,,Kitchen > Mugs\n")
    assert run(httpserver, own.parent) == 2
    error = capsys.readouterr().err
    assert error == (
        f"error: {own} was not written by prodcat collect (no readable collect.json beside it): a collection would "
        "replace it; choose another output folder\n"
    )
    assert own.read_text().endswith("A1,My mug,,,Kitchen > Mugs\n") and httpserver.log == []

    assert run(httpserver, tmp_path / "champagne", "--max-products", "2") == 0
    kept = (tmp_path / "champagne" / "products.csv").read_bytes()
    capsys.readouterr()
    assert run(httpserver, tmp_path / "champagne", query="crémant") == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'champagne'} holds the collection of 'champagne' from openfoodfacts: collecting 'crémant' "
        "from openfoodfacts there would replace its products.csv; choose another output folder (the same query there "
        "resumes it)\n"
    )
    assert (tmp_path / "champagne" / "products.csv").read_bytes() == kept
    assert run(httpserver, tmp_path / "champagne") == 0  # the same query resumes
    assert len(load_catalog(tmp_path / "champagne" / "products.csv")) == len(CHAMPAGNES) - 2

    assert refusal(httpserver, own, capsys).endswith(
        f"error: argument --out: {own} is not a folder; give a folder for the collection\n"
    )

    flipkart = tmp_path / "flipkart"
    flipkart.mkdir()
    (flipkart / "flipkart_com-ecommerce_sample.csv").write_text("uniq_id,product_name\n")
    assert run(httpserver, flipkart) == 2
    assert capsys.readouterr().err == (
        f"error: {flipkart} is a catalogue folder (flipkart_com-ecommerce_sample.csv): a collection would write its "
        "products.csv and photos among its files; choose another output folder\n"
    )
    assert [path.name for path in flipkart.iterdir()] == ["flipkart_com-ecommerce_sample.csv"]


def test_a_second_run_into_a_folder_being_collected_into_is_refused(httpserver, tmp_path, monkeypatch, capsys):
    """Two runs into one --out at once both went on, each saying it wrote its products: a collection of 'crémant'
    started while one of 'champagne' fetched its pages was written, then replaced by the champagnes, and a second
    run's start deleted the first's temporary files as leftovers. The folder is now held for the whole run."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    get_json = HttpClient.get_json
    second: list[int] = []  # its exit code

    def another_run_starts_at_page_2(self: HttpClient, url: str, params: dict[str, Any], *args: Any) -> Any:
        if params["page"] == 2 and params["search_terms"] == "champagne" and not second:
            second.append(run(httpserver, tmp_path, query="crémant"))
        return get_json(self, url, params, *args)

    monkeypatch.setattr(HttpClient, "get_json", another_run_starts_at_page_2)
    assert run(httpserver, tmp_path) == 0
    assert second == [2]
    assert (
        f"error: another prodcat collect (pid {os.getpid()}) is writing the collection in {tmp_path} (it holds "
        f"{tmp_path / '.collect.lock'}): wait for it to finish, or collect into another --out\n"
    ) in capsys.readouterr().err
    assert json.loads((tmp_path / "collect.json").read_text())["query"] == "champagne"
    assert (tmp_path / ".collect.lock").read_text() == ""


def test_an_output_folder_that_takes_no_file_is_refused_before_any_request(httpserver, read_only_folder, capsys):
    """--out in a read-only folder (a read-only mount), or a new folder under it, ended in OSError's traceback
    (exit 1): at the folder's mkdir, or at the first file written (the first page fetched, or collect.json when
    the API was not reached). Refused first now, in one line, as the other commands' --report and --out are."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    mount = read_only_folder
    for out in (mount, mount / "champagne"):
        assert refusal(httpserver, out, capsys).endswith(
            f"error: argument --out: cannot write the collection in {out}: Read-only file system\n"
        )
    assert httpserver.log == [] and list(mount.iterdir()) == []


def test_an_output_folder_inside_a_model_bundle_is_refused_before_any_request(httpserver, tmp_path, capsys):
    """--out naming a model bundle (a name mistyped, a folder reused) or a folder in one wrote the collection there,
    and the bundle then refused to load for every command ('unexpected files'), as an evaluation's --report there
    did: refused first, in one line, as those are."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    bundle = tmp_path / "model"
    bundle.mkdir()
    (bundle / "model.joblib").write_bytes(b"a model")
    (bundle / "manifest.json").write_text(json.dumps({"format_version": 5, "files": {"model.joblib": "0" * 64}}))
    for out in (bundle, bundle / "champagne"):
        assert refusal(httpserver, out, capsys).endswith(
            f"error: argument --out: {out} is inside the model bundle {bundle}, which holds its own files only (with "
            "another there it no longer loads): write it elsewhere\n"
        )
    assert httpserver.log == [] and sorted(path.name for path in bundle.iterdir()) == ["manifest.json", "model.joblib"]


def test_a_collection_edited_by_hand_is_not_replaced_by_a_rerun(httpserver, tmp_path, capsys):
    """Categories corrected by hand in products.csv were lost without a word by the next run (a resume for more
    products, a refresh), which rewrites the file from the pages saved."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path, "--max-products", "2") == 0
    catalogue = tmp_path / "products.csv"
    edited = catalogue.read_text(encoding="utf-8").replace("Beverages > Sparkling wines", "Wines > Champagnes")
    catalogue.write_text(edited, encoding="utf-8")
    capsys.readouterr()
    assert run(httpserver, tmp_path) == 2
    assert capsys.readouterr().err == (
        f"error: {catalogue} was changed since prodcat collect wrote it (edited by hand?): a collection would replace "
        "it with the API's products, the changes lost; move it elsewhere to keep them, or delete it to collect again\n"
    )
    assert catalogue.read_text(encoding="utf-8") == edited and search_requests(httpserver) == [1]

    catalogue.unlink()
    assert run(httpserver, tmp_path) == 0
    assert len(load_catalog(catalogue)) == len(CHAMPAGNES) - 2


def test_unreachable_network_fails_with_a_message_not_a_traceback(tmp_path, capsys):
    # a loopback port nobody listens on: connection refused, as fast as a missing route
    closed = f"http://127.0.0.1:{_free_port()}"
    code = main(["collect", "--query", "champagne", "--out", str(tmp_path), "--base-url", closed, *FAST])
    assert code == 2
    error = capsys.readouterr().err
    assert "error: page 1:" in error and "unreachable" in error and "Connection refused" in error
    assert "nothing was collected" in error and "Traceback" not in error
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["stopped_by"] == "error" and report["counts"]["products"] == 0


@pytest.mark.parametrize("count", [True, False], ids=["with a count", "without a count"])
def test_a_record_that_is_not_an_object_is_reported_and_counted_in_the_paging(httpserver, tmp_path, count):
    """A ``null`` among a page's products is a record served: left out, the page looked short (the last one,
    without a count) or the pages fell short of the count (an empty page then failed the run)."""
    products = [off_record("1", "A"), None, off_record("2", "B"), off_record("3", "C"), off_record("4", "D")]
    pages = search_pages(products)
    pages[3] = {"count": len(products), "products": []}  # what the real API answers past the end
    if not count:
        pages = {number: {"products": page["products"]} for number, page in pages.items()}
    serve_search(httpserver, pages)
    assert run(httpserver, tmp_path) == 0
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["stopped_by"] == "exhausted" and report["counts"]["products"] == 4
    assert report["counts"]["records_skipped"] == 1
    assert [(e["page"], e["record"], e["field"]) for e in report["errors"]] == [(1, 2, "record")]


def test_a_count_json_reads_as_infinity_is_an_unknown_total_not_a_crash():
    collector = OpenFoodFactsCollector()
    for body in ('{"count": 1e400, "products": []}', '{"count": Infinity, "products": []}'):
        assert collector.parse_page(json.loads(body)).total is None


def test_an_address_python_cannot_parse_fails_its_photo_or_page_not_the_whole_run(httpserver, tmp_path):
    """``urllib.parse`` raises a plain ValueError for "http://[::1" (no closing bracket), not urllib3's error."""
    products = [off_record("1", "Bad photo address", image_front_url="http://[::1/x.jpg"), off_record("2", "Fine")]
    serve_search(httpserver, search_pages(products))
    assert run(httpserver, tmp_path, "--images") == 0
    assert len(pd.read_csv(tmp_path / "products.csv", dtype=str)) == 2
    (error,) = json.loads((tmp_path / "collect.json").read_text())["errors"]
    assert (error["product_id"], error["field"]) == ("1", "image") and "Invalid IPv6 URL" in error["message"]


def test_a_proxy_that_cannot_be_reached_is_blamed_not_the_api(tmp_path, capsys):
    proxy = f"http://127.0.0.1:{_free_port()}"
    code = main(["collect", "--query", "champagne", "--out", str(tmp_path), "--base-url", "http://api.example",
                 "--proxy", proxy, *FAST])  # fmt: skip
    assert code == 2
    error = capsys.readouterr().err
    assert "proxy failed" in error and "Connection refused" in error and "Check the network connection" in error
    assert "The API is failing" not in error


def test_a_certificate_that_does_not_verify_fails_at_once_saying_so(tmp_path, monkeypatch, capsys):
    """A proxy inspecting HTTPS, or a wrong host: retrying cannot help, and the API is not 'overloaded'."""
    attempts = []

    def request(manager: urllib3.PoolManager, method: str, url: str, **_: Any) -> None:
        attempts.append(url)
        try:
            raise ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
        except ssl.SSLCertVerificationError as exc:
            try:
                raise urllib3.exceptions.SSLError(exc)  # as urllib3 raises it, the ssl error as its context
            except urllib3.exceptions.SSLError as wrapped:
                raise urllib3.exceptions.MaxRetryError(None, url, wrapped) from None

    monkeypatch.setattr(urllib3.PoolManager, "request", request)
    code = main(["collect", "--query", "champagne", "--out", str(tmp_path), "--base-url", "https://api.example", *FAST])
    assert code == 2 and len(attempts) == 1
    error = capsys.readouterr().err
    assert "certificate not trusted ([SSL: CERTIFICATE_VERIFY_FAILED]" in error
    assert "certificate could not be verified" in error and "The API is failing" not in error


def test_https_to_a_plain_http_server_fails_at_once_saying_so(httpserver, tmp_path, capsys, caplog):
    """A real TLS handshake against a server that speaks plain HTTP: no retry can succeed."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    base = httpserver.url_for("/").replace("http://", "https://").rstrip("/")
    code = main(["collect", "--query", "champagne", "--out", str(tmp_path), "--base-url", base, *FAST])
    assert code == 2
    error = capsys.readouterr().err
    assert "TLS handshake failed" in error and "WRONG_VERSION_NUMBER" in error
    assert "could not agree on a secure connection" in error and "The API is failing" not in error
    assert "retry 1 of" not in caplog.text  # not retried


def test_collected_catalogue_goes_through_predict(httpserver, tmp_path, flipkart_bundle):
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path / "collected") == 0
    preds = tmp_path / "preds.csv"
    assert (
        main(["predict", str(flipkart_bundle), str(tmp_path / "collected" / "products.csv"), "--out", str(preds)]) == 0
    )
    table = pd.read_csv(preds, dtype=str)
    assert list(table["product_id"]) == list(
        pd.read_csv(tmp_path / "collected" / "products.csv", dtype=str)["product_id"]
    )
    assert table["category"].notna().all() and set(table["modalities_used"]) == {"text"}


class FakeTime:
    """A clock that moves only when slept on: the waits are observed, none is taken."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_request_starts():
    fake = FakeTime()
    limiter = RateLimiter(4.0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        limiter.wait()
    assert fake.slept == [0.25, 0.25]
    fake.now += 10.0  # idle for a while: the next request goes at once, with no burst credit saved up
    limiter.wait()
    limiter.wait()
    assert fake.slept == [0.25, 0.25, 0.25]


def test_collect_api_refuses_a_non_positive_limit(tmp_path):
    with pytest.raises(ValueError, match="max_products must be at least 1"):
        collect(OpenFoodFactsCollector(), "champagne", tmp_path, HttpClient("test", 1.0), max_products=0)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_retries_back_off_from_the_first_one():
    client = HttpClient("test", 1.0, backoff=1.5)
    assert [client.retry_wait(http.SERVER_ERROR, retry) for retry in range(1, 6)] == [1.5, 3.0, 6.0, 12.0, 24.0]
    assert client.retry_wait(http.SERVER_ERROR, 10) == http.MAX_WAIT


def test_a_servers_retry_after_is_waited_at_most_as_long_as_a_backoff():
    """``Retry-After: 3600`` must not hold the command silently for an hour."""
    client = HttpClient("test", 1.0)
    for asked, wait in ((3600.0, 60.0), (7.0, 7.0)):
        assert client.retry_wait(http.RATE_LIMITED, 1, retry_after=asked) == wait


def test_searches_go_at_the_rate_the_readme_states_by_default(httpserver, tmp_path, monkeypatch):
    """Without ``--rate``, searches start 60 / N seconds apart, N the searches a minute that docs/collect.md gives
    as the API's stated limit. Observed on the rate limiter's clock, which the test drives: no real waiting."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "docs" / "collect.md").read_text(encoding="utf-8")
    per_minute = int(re.search(r"stated\s+rate\s+\((\d+)\s+searches\s+a\s+minute", readme).group(1))
    fake = FakeTime()

    class ObservedRateLimiter(RateLimiter):
        def __init__(self, requests_per_second: float, **_: object) -> None:
            super().__init__(requests_per_second, clock=fake.clock, sleep=fake.sleep)

    monkeypatch.setattr(http, "RateLimiter", ObservedRateLimiter)
    serve_search(httpserver, search_pages(CHAMPAGNES))
    base = httpserver.url_for("/")
    options = ["--page-size", str(PAGE_SIZE), "--backoff", "0", "--retries", "0"]  # FAST without --rate
    assert main(["collect", "--query", "champagne", "--out", str(tmp_path), "--base-url", base, *options]) == 0
    assert search_requests(httpserver) == [1, 2, 3]
    assert fake.slept == pytest.approx([60 / per_minute] * 2)  # the first search at once, each next one a slot later


def json_response(payload: Any) -> Response:
    return Response(json.dumps(payload), content_type="application/json")


def test_an_empty_page_before_the_apis_count_is_retried_never_saved_and_a_resume_goes_past_it(
    httpserver, tmp_path, capsys
):
    """An empty page while the API's count says more results follow is a failed page, not the end of the results."""
    pages = search_pages(CHAMPAGNES)
    empty = {**pages[2], "products": []}
    serve_search(httpserver, pages, first_answers={2: [json_response(empty)]})
    assert run(httpserver, tmp_path / "once") == 0
    assert search_requests(httpserver) == [1, 2, 2, 3]
    assert len(pd.read_csv(tmp_path / "once" / "products.csv", dtype=str)) == len(CHAMPAGNES) - 2

    # empty on every try: the run stops with an error, the page is not saved, and the next run asks for it
    httpserver.clear()
    serve_search(httpserver, pages, first_answers={2: [json_response(empty)] * 3})
    assert run(httpserver, tmp_path) == 2
    error = capsys.readouterr().err
    assert "error: page 2:" in error and "an empty page, although the API counts 9 results" in error
    assert [path.name for path in (tmp_path / "pages").rglob("*.json")] == ["page-0001.json"]
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1, 2, 2, 2, 2, 3]

    # an empty page saved by an older version is asked for again, not taken for the end
    (saved,) = (tmp_path / "pages").rglob("page-0003.json")
    saved.write_text(json.dumps({**pages[3], "products": []}))
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver)[-1] == 3 and len(search_requests(httpserver)) == 7


def test_json_nested_deeper_than_pythons_stack_is_an_answer_that_is_not_json_not_a_crash(httpserver, tmp_path, capsys):
    httpserver.expect_request("/cgi/search.pl").respond_with_data("[" * 100_000, content_type="application/json")
    assert run(httpserver, tmp_path) == 2
    assert "not JSON (application/json: JSON nested too deeply)" in capsys.readouterr().err


def test_a_maintenance_page_or_cut_json_answered_with_200_is_retried(httpserver, tmp_path):
    pages = search_pages(CHAMPAGNES)
    maintenance = Response("<html>Open Food Facts is under maintenance</html>", content_type="text/html")
    cut = Response(json.dumps(pages[2])[:60], content_type="application/json")
    serve_search(httpserver, pages, first_answers={1: [maintenance], 2: [cut]})
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1, 1, 2, 2, 3]
    (saved,) = (tmp_path / "pages").rglob("page-0002.json")
    assert json.loads(saved.read_bytes()) == pages[2]  # the whole page, not the cut one


def test_a_page_with_a_lone_surrogate_a_latin1_byte_odd_fields_and_a_huge_text_is_collected_and_reported(
    httpserver, tmp_path
):
    records = [
        off_record("1", "Champagne \ud83d half an emoji"),
        off_record("2", "Crémant"),
        off_record("3", ["a", "list"], product_name_fr="Brut"),
        off_record("4", "Long", ingredients_text="x" * 150_000),
    ]
    body = json.dumps({"count": 4, "products": records}).encode()  # ASCII: "\ud83d" is an escape, as JSON allows
    body = body.replace(b"Cr\\u00e9mant", b"Cr\xe9mant")  # a name stored in Latin-1 inside the UTF-8 page
    httpserver.expect_request("/cgi/search.pl").respond_with_data(body, content_type="application/json")
    assert run(httpserver, tmp_path) == 0

    frame = load_catalog(tmp_path / "products.csv").frame.set_index("product_id")
    assert list(frame["title"]) == ["Champagne \ufffd half an emoji", "Crémant", "Brut", "Long"]
    assert len(frame.loc["4", "description"]) == MAX_TEXT_CHARS
    with open(tmp_path / "products.csv", newline="", encoding="utf-8") as handle:
        assert len(list(csv.reader(handle))) == 5  # Python's csv reader and its default field limit read it too
    (saved,) = (tmp_path / "pages").rglob("page-0001.json")
    assert saved.read_bytes() == body  # as received
    report = json.loads((tmp_path / "collect.json").read_text())
    assert [(w.get("product_id"), w["field"]) for w in report["warnings"]] == [
        (None, "page"),
        ("3", "product_name"),
        ("4", "description"),
    ]
    assert "read as Windows-1252" in report["warnings"][0]["message"]
    description = f"Champagne brut. {'x' * 150_000}. Moët & Chandon, LVMH"
    assert report["warnings"][2]["message"] == f"{len(description):,} characters, cut at 100,000"


def serve_answers(httpserver: HTTPServer, path: str, answers: list[Response]) -> None:
    """Answer ``path`` with ``answers`` in turn, then with ``{"ok": 1}``."""
    pending = list(answers)

    def answer(_: Request) -> Response:
        return pending.pop(0) if pending else json_response({"ok": 1})

    httpserver.expect_request(path).respond_with_handler(answer)


def test_a_429_without_retry_after_waits_the_apis_window_on_a_budget_of_its_own(httpserver):
    busy, too_many = Response("busy", status=503), Response("<h1>429</h1>", status=429)  # no Retry-After
    serve_answers(httpserver, "/search", [busy, busy, too_many, too_many])
    fake = FakeTime()
    client = HttpClient("test", 1000.0, retries=2, backoff=1.0, clock=fake.clock, sleep=fake.sleep)
    assert client.get_json(httpserver.url_for("/search")).value == {"ok": 1}
    assert fake.slept == [1.0, 2.0, 60.0, 60.0]  # two backoffs, then two windows of 60 s

    serve_answers(httpserver, "/refused", [too_many] * 3)
    with pytest.raises(NetworkError) as refused:
        client.get_json(httpserver.url_for("/refused"))
    assert refused.value.cause == http.RATE_LIMITED and "HTTP 429" in str(refused.value)


def test_a_retry_waits_for_the_rate_limiters_slot_too(httpserver):
    serve_answers(httpserver, "/search", [Response("busy", status=503)])
    fake = FakeTime()
    client = HttpClient("test", 1 / 6, retries=2, backoff=1.0, clock=fake.clock, sleep=fake.sleep)
    client.get_json(httpserver.url_for("/search"))
    assert fake.slept == [1.0, 5.0]  # the backoff, then the rest of the 6 s between two requests


def trickle(count: int, interval: float):
    for _ in range(count):
        time.sleep(interval)
        yield b"x"


def test_a_download_slower_than_the_deadline_is_abandoned_and_not_retried(httpserver):
    """Each byte comes within the read timeout, the whole never would: the deadline bounds the download."""
    httpserver.expect_request("/slow.jpg").respond_with_handler(lambda _: Response(trickle(200, 0.02)))
    client = HttpClient("test", 1000.0, retries=2, backoff=0.0, timeout=5.0, deadline=0.3, private_hosts=[STAND_IN])
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"still downloading after 0\.3 s") as slow:
        client.get_bytes(httpserver.url_for("/slow.jpg"), 1_000_000)
    assert time.monotonic() - started < 2.0 and slow.value.cause == http.TOO_SLOW
    assert len(httpserver.log) == 1


def test_an_answer_that_came_whole_after_the_deadline_is_kept(httpserver):
    """A photo or page whose server took longer than the deadline to start its answer, then sent it whole, was read
    whole and thrown away, said to be 'still downloading after 0.3 s (2769 bytes received): too slow' (a page so lost
    stopped the run: a slow answer is not retried). Only an answer with more to come is abandoned."""
    photo = jpeg_bytes()

    def late(_: Request) -> Response:
        time.sleep(0.6)
        return Response(photo, content_type="image/jpeg")

    httpserver.expect_request("/late.jpg").respond_with_handler(late)
    client = HttpClient("test", 1000.0, retries=0, timeout=5.0, deadline=0.3, private_hosts=[STAND_IN])
    assert client.get_bytes(httpserver.url_for("/late.jpg"), 1_000_000) == photo


def test_an_answer_announcing_more_than_the_limit_is_refused_before_it_is_read(httpserver):
    announced = Response(trickle(1000, 0.002), headers={"Content-Length": "1000"})
    httpserver.expect_request("/large.jpg").respond_with_handler(lambda _: announced)
    client = HttpClient("test", 1000.0, retries=0, private_hosts=[STAND_IN])
    started = time.monotonic()
    with pytest.raises(NetworkError, match=r"larger than the limit of 500 bytes \(Content-Length 1000\)") as large:
        client.get_bytes(httpserver.url_for("/large.jpg"), 500)
    assert time.monotonic() - started < 1.0 and large.value.cause == http.TOO_LARGE


def test_a_json_answer_is_read_up_to_a_size_limit(httpserver, monkeypatch):
    monkeypatch.setattr(http, "MAX_JSON_BYTES", 1000)
    httpserver.expect_request("/search").respond_with_handler(lambda _: Response(trickle(2000, 0)))  # no length
    with pytest.raises(NetworkError, match="larger than the limit of 1000 bytes") as large:
        HttpClient("test", 1000.0, retries=0).get_json(httpserver.url_for("/search"))
    assert large.value.cause == http.TOO_LARGE


def test_each_host_goes_through_the_proxy_the_environment_sets_for_it(monkeypatch):
    """The API may be exempt from the proxy (NO_PROXY) while the photo host is not, or the other way round."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "api.example")
    client = HttpClient("test", 1.0)
    assert not isinstance(client._manager("http://api.example/cgi/search.pl"), urllib3.ProxyManager)
    photos = client._manager("http://images.example/1.jpg")
    assert isinstance(photos, urllib3.ProxyManager) and photos.proxy.host == "proxy.example"
    given = HttpClient("test", 1.0, proxy="http://other.example:8080")._manager("http://api.example/")
    assert isinstance(given, urllib3.ProxyManager) and given.proxy.host == "other.example"


@pytest.mark.parametrize("given_by", ["--proxy", "http_proxy"])
def test_a_proxy_given_without_its_scheme_is_an_http_proxy(httpserver, tmp_path, monkeypatch, capsys, given_by):
    """HTTPS_PROXY=proxy.corp:3128, as curl and requests read it (an http:// proxy), failed every request: 'cannot
    fetch this address (Proxy URL had no scheme, should start with http:// or https://)', blaming the API's
    address."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    serve_search(httpserver, search_pages(CHAMPAGNES[:2]))  # the proxy: the API's host is not on this machine
    proxy = f"127.0.0.1:{httpserver.port}"
    options = ["--proxy", proxy] if given_by == "--proxy" else []
    if given_by == "http_proxy":
        monkeypatch.setenv("http_proxy", proxy)
    code = main(["collect", "--query", "champagne", "--out", str(tmp_path), "--base-url", "http://api.example",
                 *options, *FAST])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert [request.host for request, _ in httpserver.log] == ["api.example"]
    assert len(load_catalog(tmp_path / "products.csv").frame) == 2


def test_the_exit_message_of_a_rate_limited_run_does_not_blame_the_network(httpserver, tmp_path, capsys):
    httpserver.expect_request("/cgi/search.pl").respond_with_data("Too Many", status=429, headers={"Retry-After": "0"})
    assert run(httpserver, tmp_path) == 2
    error = capsys.readouterr().err
    assert "HTTP 429" in error and "'too many requests': wait a few minutes" in error
    assert "network connection" not in error


def test_results_the_api_counts_but_no_page_holds_are_reported(httpserver, tmp_path):
    """A popularity sort moving under the pager: a record of page 1 comes again on page 2, and the API's count
    is reached with one product never served."""
    records = [off_record(str(n), f"Champagne {n}") for n in range(1, 7)]
    pages = search_pages(records)
    pages[2]["products"] = records[2:5]
    serve_search(httpserver, pages)
    assert run(httpserver, tmp_path) == 0
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["stopped_by"] == "exhausted" and report["counts"]["products"] == 5
    (warning,) = report["warnings"]
    # one missing, and written as the counts of the other messages: it said '1 of them were', and '12345 results'
    assert "the API counts 6 results, but 1 of them was on no page read" in warning["message"]
    assert _unserved_message(total=12_345, records=12_000, duplicates=1_000).startswith(
        "the API counts 12,345 results, but 1,345 of them were on no page read (the results moved between pages while "
        "paging: 1,000 came twice)"
    )


def _unserved_message(total: int, records: int, duplicates: int) -> str:
    """The warning of a search whose ``total`` results ran out after ``records``, ``duplicates`` of them again."""
    from prodcat.collect.pipeline import CollectReport, _warn_about_unserved_results

    report = CollectReport("openfoodfacts", "champagne", "http://127.0.0.1", "2026-12-07", total_matching=total)
    report.stopped_by = "exhausted"
    report.counts.update(records=records, duplicates=duplicates)
    _warn_about_unserved_results(report)
    (warning,) = report.warnings
    return warning["message"]


def test_the_count_of_results_of_a_page_an_earlier_run_saved_says_its_day(httpserver, tmp_path):
    """A resume whose last page came from disk gave that page's count of results as the API's (total_matching, and
    the warnings quoting it), though an earlier run had saved it, maybe days before: the search may have grown since.
    collect.json now says when that page was saved (total_matching_saved), and so do the warnings; a run fetching its
    last page gives the API's count of now."""
    records = [off_record(str(n), f"Champagne {n}") for n in range(1, 7)]
    pages = search_pages(records)
    pages[2]["products"] = records[2:5]  # the API counts 6, one of them never served
    serve_search(httpserver, pages)
    assert run(httpserver, tmp_path) == 0
    assert json.loads((tmp_path / "collect.json").read_text())["total_matching_saved"] is None
    day = datetime(2026, 11, 2, 9, 30, tzinfo=UTC).timestamp()
    for page in (tmp_path / "pages").rglob("page-*.json"):
        os.utime(page, (day, day))

    httpserver.clear()
    serve_search(httpserver, search_pages([*records, off_record("7", "Champagne 7")]))  # the search has grown since
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == []  # every page from disk
    report = json.loads((tmp_path / "collect.json").read_text())
    assert (report["total_matching"], report["total_matching_saved"]) == (6, "2026-11-02T09:30:00+00:00")
    (warning,) = report["warnings"]
    assert warning["message"].startswith(
        "the API counted 6 results on 2026-11-02 09:30 UTC (on a page an earlier run saved), but 1 of them was on no "
        "page read"
    )

    assert run(httpserver, tmp_path, "--refresh") == 0
    report = json.loads((tmp_path / "collect.json").read_text())
    assert (report["total_matching"], report["total_matching_saved"], report["warnings"]) == (7, None, [])


def test_ctrl_c_writes_what_was_collected_and_says_how_to_resume(httpserver, tmp_path, monkeypatch, capsys):
    serve_search(httpserver, search_pages(CHAMPAGNES))
    press_ctrl_c_at_page(monkeypatch, 2)
    assert run(httpserver, tmp_path) == 130
    error = capsys.readouterr().err
    assert "interrupted: the 3 products collected so far are kept; run the same command again to resume" in error
    assert len(pd.read_csv(tmp_path / "products.csv", dtype=str)) == 3
    assert json.loads((tmp_path / "collect.json").read_text())["stopped_by"] == "interrupted"

    monkeypatch.undo()
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1, 2, 3]


def test_ctrl_c_while_the_outputs_are_written_says_how_to_resume(httpserver, tmp_path, monkeypatch, capsys):
    """Ctrl-C while products.csv was written ended the run without a word (exit 130, no summary, no advice)."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path, "--max-products", "2") == 0
    write_atomically = writing.write_atomically

    def ctrl_c_at_products_csv(path: Path, write: Any, *args: Any) -> None:
        if path.name == "products.csv":
            raise KeyboardInterrupt
        write_atomically(path, write, *args)

    monkeypatch.setattr(writing, "write_atomically", ctrl_c_at_products_csv)
    capsys.readouterr()
    assert run(httpserver, tmp_path) == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        "interrupted: the pages and photos saved so far are kept; run the same command again to resume"
    )
    assert len(load_catalog(tmp_path / "products.csv")) == 2  # the earlier one, accepted by the report written first

    monkeypatch.undo()
    assert run(httpserver, tmp_path) == 0
    assert len(load_catalog(tmp_path / "products.csv")) == len(CHAMPAGNES) - 2
    assert search_requests(httpserver) == [1, 2, 3]  # the interrupted run's pages kept


@pytest.mark.parametrize(
    ("without_text", "with_text", "kept"),
    [
        (0, 1, "the 1 product collected so far is kept"),
        (2, 1, "of the 3 products collected so far, the 1 with a name, description or photo is kept"),
        (3, 0, "of the 3 products collected so far, none has a name, description or photo: nothing is kept"),
    ],
)
def test_ctrl_c_says_how_many_of_the_products_collected_are_kept(
    httpserver, tmp_path, monkeypatch, capsys, without_text, with_text, kept
):
    """Ctrl-C said 'the 1 products collected so far are kept' (or 'nothing was collected') of a run that had collected
    3, 2 (or 3) of them left out of products.csv for want of a name, description or photo on disk; and 'the 1
    products collected so far are kept', 'the 1 with a name, description or photo are kept' of one product."""
    page_1 = [record_without_text(httpserver, code) for code in "abc"[:without_text]]
    page_1 += [off_record(str(n), f"Champagne {n}") for n in range(with_text)]
    serve_search(httpserver, search_pages(page_1, total=len(page_1) + PAGE_SIZE))  # a page 2 to come
    press_ctrl_c_at_page(monkeypatch, 2)
    assert run(httpserver, tmp_path) == 130
    assert f"interrupted: {kept}; run the same command again to resume" in capsys.readouterr().err


def test_a_refresh_answered_nothing_or_far_fewer_products_keeps_the_collection_unless_asked(
    httpserver, tmp_path, capsys
):
    """A --refresh while the API answered 0 results (or an error page read as an empty one) rewrote products.csv
    empty: the whole collection lost. A finished run keeping fewer than half of the products leaves it as it was
    and exits 2, saying how many it held and how many the API answered; --allow-fewer replaces it."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path) == 0
    collection = (tmp_path / "products.csv").read_bytes()
    held = len(CHAMPAGNES) - 2

    collected = {0: "0 products (the API counts 0 results)", 1: "1 product (the API counts 1 result)",
                 3: "3 products (the API counts 3 results)"}  # fmt: skip
    for records in ([], CHAMPAGNES[:1], CHAMPAGNES[:3]):  # nothing, then fewer than half
        httpserver.clear()
        serve_search(httpserver, search_pages(records))
        capsys.readouterr()
        assert run(httpserver, tmp_path, "--refresh") == 2
        captured = capsys.readouterr()
        error = captured.err.splitlines()[-1]
        assert error == (
            f"error: this run collected {collected[len(records)]}, fewer than half of the {held} that products.csv "
            "holds: it is kept as it was. If the API answered wrongly, run the command again later (with --refresh); "
            "if the products left it, add --allow-fewer to replace it"
        )
        assert "written to" not in captured.out and "is empty" not in captured.out
        assert (tmp_path / "products.csv").read_bytes() == collection
        assert json.loads((tmp_path / "collect.json").read_text())["kept_earlier"] == error.removeprefix("error: ")

    # half of them or more: replaced, the products gone said
    httpserver.clear()
    serve_search(httpserver, search_pages(CHAMPAGNES[:6]))
    assert run(httpserver, tmp_path, "--refresh") == 0
    assert "3 product(s) of the earlier products.csv are not in this one" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "products.csv", dtype=str)) == 4

    httpserver.clear()
    serve_search(httpserver, {})
    assert run(httpserver, tmp_path, "--refresh", "--allow-fewer") == 0
    assert pd.read_csv(tmp_path / "products.csv").empty


def test_a_run_without_refresh_after_a_refused_refresh_reads_the_earlier_pages(httpserver, tmp_path):
    """A --refresh refused for keeping fewer than half of the products saved its empty page 1 over the earlier one: a
    re-run without --refresh read it and was refused too, until a --refresh succeeded. An accepted refresh's pages
    replace the earlier ones."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path) == 0
    collection = (tmp_path / "products.csv").read_bytes()
    httpserver.clear()
    serve_search(httpserver, {})
    assert run(httpserver, tmp_path, "--refresh") == 2
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1]  # the refresh's alone
    assert (tmp_path / "products.csv").read_bytes() == collection

    httpserver.clear()
    serve_search(httpserver, search_pages(CHAMPAGNES[:6]))
    assert run(httpserver, tmp_path, "--refresh") == 0
    refreshed = (tmp_path / "products.csv").read_bytes()
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1, 2]  # the refresh's alone
    assert (tmp_path / "products.csv").read_bytes() == refreshed != collection


@pytest.mark.parametrize("stop", ["ctrl-c", "error"])
def test_a_refresh_stopped_halfway_keeps_the_collection_it_would_shrink(
    httpserver, tmp_path, monkeypatch, capsys, stop
):
    """Ctrl-C or a failing page during a --refresh rewrote products.csv with the products of the pages fetched so
    far: 3 of a collection of 7."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path) == 0
    collection = (tmp_path / "products.csv").read_bytes()
    if stop == "ctrl-c":
        press_ctrl_c_at_page(monkeypatch, 2)
    else:
        httpserver.clear()
        serve_search(httpserver, search_pages(CHAMPAGNES), failing=(2,))
    capsys.readouterr()
    assert run(httpserver, tmp_path, "--refresh") == (130 if stop == "ctrl-c" else 2)
    assert "products.csv keeps the 7 products it held: this run had collected 3; run the same command again to " \
        "resume" in capsys.readouterr().err  # fmt: skip
    assert (tmp_path / "products.csv").read_bytes() == collection


def test_a_collection_kept_for_the_products_left_out_says_how_many_were_collected_and_how_many_written(
    httpserver, tmp_path, capsys
):
    """The products left out of products.csv for want of a text or photo count against the share a run must keep to
    replace it; the message keeping the collection then said 'this run had collected 1' (or 'this run collected 1
    products') of a run that had collected 3 and would have written 1. A finished run short for them alone said to
    run again later or add --allow-fewer, as if the API had answered fewer: it says to fetch their photos."""
    serve_search(httpserver, search_pages([off_record(code, f"Champagne {code}") for code in "1234"]))
    assert run(httpserver, tmp_path) == 0
    collection = (tmp_path / "products.csv").read_bytes()
    records = [record_without_text(httpserver, "a"), record_without_text(httpserver, "b"), off_record("1", "Brut")]

    httpserver.clear()
    serve_search(httpserver, search_pages(records))
    capsys.readouterr()
    assert run(httpserver, tmp_path, "--refresh") == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error == (
        "error: this run collected 3 products (the API counts 3 results) but would write only 1 (2 without a name, "
        "description or photo), fewer than half of the 4 that products.csv holds: it is kept as it was. To write the "
        "2 left out: run the same command with --images to fetch 2 photos; to replace it without them, add "
        "--allow-fewer"
    )

    httpserver.clear()
    serve_search(httpserver, search_pages([*records, off_record("2", "Champagne 2")]), failing=(2,))
    assert run(httpserver, tmp_path, "--refresh") == 2
    assert "products.csv keeps the 4 products it held: this run had collected 3 but would write only 1 (2 without a " \
        "name, description or photo); run the same command" in capsys.readouterr().err  # fmt: skip
    assert (tmp_path / "products.csv").read_bytes() == collection


def refresh_stopped_at_page_3(httpserver: HTTPServer, out: Path) -> Path:
    """Collect :data:`CHAMPAGNES` into ``out``, then run a --refresh that fails at page 3; the folder of its pages."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, out) == 0
    httpserver.clear()
    serve_search(httpserver, search_pages(CHAMPAGNES), failing=(3,))
    assert run(httpserver, out, "--refresh") == 2
    assert search_requests(httpserver) == [1, 2, 3, 3, 3]
    httpserver.clear()
    serve_search(httpserver, search_pages(CHAMPAGNES))
    (refreshing,) = (out / "pages").glob(f"*/{REFRESH_DIR}")
    return refreshing


def test_a_refresh_stopped_halfway_resumes_where_it_stopped_saying_so(httpserver, tmp_path, caplog):
    """A --refresh of thousands of products failing at page 40 said to run the same command again to resume, which
    fetched every page again from page 1; and on a flaky network no refresh could reach the end. A resumed refresh
    is said, on the console and in collect.json, with the folder to delete to start over."""
    refreshing = refresh_stopped_at_page_3(httpserver, tmp_path)
    begun = datetime.fromtimestamp((refreshing / REFRESH_BEGAN).stat().st_mtime, UTC)
    caplog.clear()
    assert run(httpserver, tmp_path, "--refresh") == 0
    assert search_requests(httpserver) == [3]  # pages 1 and 2 as the stopped refresh saved them
    assert len(load_catalog(tmp_path / "products.csv")) == len(CHAMPAGNES) - 2
    assert f"resuming the refresh begun on {begun:%Y-%m-%d %H:%M} UTC; delete {refreshing} to start over" in caplog.text
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["refresh_resumed"] == begun.isoformat(timespec="seconds")

    caplog.clear()
    assert run(httpserver, tmp_path, "--refresh") == 0
    assert search_requests(httpserver) == [3, 1, 2, 3]  # that refresh reached the end: the next one starts anew
    assert "resuming" not in caplog.text
    assert json.loads((tmp_path / "collect.json").read_text())["refresh_resumed"] is None


@pytest.mark.parametrize("last_page_saved_hours_ago", [25, 1])
def test_a_refresh_that_saved_no_page_for_a_day_starts_over(httpserver, tmp_path, caplog, last_page_saved_hours_ago):
    """A refresh stopped long ago was resumed without a word by the next --refresh, which reused the pages it had
    fetched then; one that saved no page for a day starts over, while one begun days ago but saving pages since goes
    on."""
    refreshing = refresh_stopped_at_page_3(httpserver, tmp_path)
    # the first collection 4 days ago, the refresh begun 3 days ago (page 1 saved then) and page 2 saved since
    hours_ago = {path: 96 for path in refreshing.parent.glob("size-3/page-*.json")} | {
        refreshing / REFRESH_BEGAN: 72,
        refreshing / "size-3" / "page-0001.json": 72,
        refreshing / "size-3" / "page-0002.json": last_page_saved_hours_ago,
    }
    for path, hours in hours_ago.items():
        os.utime(path, (time.time() - hours * 3600,) * 2)
    caplog.clear()
    assert run(httpserver, tmp_path, "--refresh") == 0
    report = json.loads((tmp_path / "collect.json").read_text())
    if last_page_saved_hours_ago > 24:
        assert search_requests(httpserver) == [1, 2, 3]
        assert "saved no page for over 24 hours: started over" in caplog.text
        assert report["refresh_resumed"] is None
    else:
        assert search_requests(httpserver) == [3]
        assert "resuming the refresh begun on" in caplog.text and report["refresh_resumed"] is not None


def test_a_full_disk_stops_with_a_message_and_a_resume_continues(httpserver, tmp_path, monkeypatch, capsys):
    """A page or photo written on a full disk ended the run with an OSError traceback."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    write_atomically = writing.write_atomically

    def no_room(handle: Any) -> None:
        # as a full disk fails a write or its flush: the OSError names no file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def disk_full_at_page_2(path: Path, write: Any, *args: Any) -> None:
        write_atomically(path, no_room if path.name == "page-0002.json" else write, *args)

    monkeypatch.setattr(writing, "write_atomically", disk_full_at_page_2)
    assert run(httpserver, tmp_path) == 2
    error = capsys.readouterr().err
    (page,) = (tmp_path / "pages").glob("*/size-3")
    assert error.splitlines()[-1] == (
        f"error: cannot write {page / 'page-0002.json'}: No space left on device. Free some space, then run the same "
        "command again to resume: the pages and photos saved so far are kept"
    )
    assert "Traceback" not in error

    monkeypatch.undo()
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1, 2, 2, 3]  # page 1 from disk


@pytest.mark.parametrize("failing", ["products.csv", "collect.json", "collect.json after products.csv"])
def test_a_run_stopped_while_writing_its_outputs_resumes_its_collection(httpserver, tmp_path, monkeypatch, failing):
    """products.csv was written before collect.json: a full disk (or Ctrl-C) between the two left the earlier report's
    checksum beside the new products.csv, and every later run refused the collection as 'edited by hand?'."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path, "--max-products", "2") == 0
    write_atomically = writing.write_atomically
    written: list[str] = []

    def disk_full(path: Path, write: Any, *args: Any) -> None:
        if failing in (path.name, f"{path.name} after {written[-1] if written else ''}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write_atomically(path, write, *args)
        written.append(path.name)

    monkeypatch.setattr(writing, "write_atomically", disk_full)
    assert run(httpserver, tmp_path) == 2  # the rest of the products: products.csv rewritten

    monkeypatch.undo()
    assert run(httpserver, tmp_path) == 0
    catalogue = tmp_path / "products.csv"
    assert len(load_catalog(catalogue)) == len(CHAMPAGNES) - 2
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["products_sha256"] == hashlib.sha256(catalogue.read_bytes()).hexdigest()
    assert report["replacing_sha256"] is None


def test_temporary_files_left_by_a_killed_run_are_removed_and_a_users_are_not(httpserver, tmp_path):
    """The half-written files of a run killed outright (a photo, a page, products.csv) stayed forever."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path, "--max-products", "2") == 0
    (pages,) = (tmp_path / "pages").glob("*/size-3")
    (tmp_path / "images").mkdir()
    leftovers = [
        temporary_sibling(tmp_path / "products.csv"),
        temporary_sibling(tmp_path / "images" / "3185370000335.jpeg"),
        temporary_sibling(pages / "page-0002.json"),
    ]
    users = [temporary_sibling(tmp_path / "notes.txt"), tmp_path / "draft.tmp"]
    for path in leftovers + users:
        path.write_bytes(b"half")
    assert run(httpserver, tmp_path) == 0
    assert [path for path in leftovers + users if path.exists()] == users


def test_a_blank_query_is_refused_before_any_request(httpserver, tmp_path, capsys):
    assert "argument --query: is blank" in refusal(httpserver, tmp_path, capsys, query="   ")
    assert httpserver.log == []
    with pytest.raises(ValueError, match="blank"):
        collect(OpenFoodFactsCollector(), " ", tmp_path, HttpClient("test", 1.0))


@pytest.mark.parametrize(
    ("option", "what"), [("--timeout", "of seconds"), ("--rate", "per second"), ("--deadline", "of seconds")]
)
@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_number_that_is_not_finite_is_refused_before_any_request(httpserver, tmp_path, capsys, option, what, value):
    """--timeout inf crashed with an OverflowError traceback once a request was sent; --rate nan sent the searches
    with no wait between them."""
    error = refusal(httpserver, tmp_path, capsys, option, value)
    assert f"argument {option}: must be a number {what} above 0, got {value}" in error
    assert httpserver.log == []


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--timeout", "a minute", "not a number of seconds: 'a minute'"),
        ("--deadline", "0", "must be a number of seconds above 0, got 0"),
        ("--backoff", "-1", "must be a number of seconds, 0 or more, got -1"),
        ("--rate", "fast", "not a number per second: 'fast'"),
        ("--image-rate", "0", "must be a number per second above 0, got 0"),
        ("--max-products", "2.5", "not a whole number: '2.5'"),
        ("--page-size", "0", "must be at least 1, got 0"),
        ("--retries", "-1", "must be at least 0, got -1"),
    ],
)
def test_a_number_option_is_refused_in_the_words_of_the_other_commands(
    httpserver, tmp_path, capsys, option, value, problem
):
    """collect had its own wording for a number option given wrong: 'expected a number, got 'a minute'' where
    predict's --worker-wait says 'not a number of seconds: 'a minute'', and 'must be above 0, got 0' where the
    other commands' counts say 'must be at least 1, got 0'. It now says what they do (prodcat.arguments)."""
    assert f"argument {option}: {problem}" in refusal(httpserver, tmp_path, capsys, option, value)
    assert httpserver.log == []


def test_a_page_size_above_the_apis_largest_is_refused_not_cut_silently(httpserver, tmp_path, capsys):
    """--page-size 500 collected pages of 100 without a word: the API serves at most 100 records a page."""
    largest = OpenFoodFactsCollector.max_page_size
    with pytest.raises(SystemExit) as refused:
        main(["collect", "--query", "champagne", "--out", str(tmp_path), "--base-url", httpserver.url_for("/"),
              "--page-size", str(largest + 1)])  # fmt: skip
    error = capsys.readouterr().err
    assert refused.value.code == 2
    assert f"argument --page-size: at most {largest}, the largest page the API serves, got {largest + 1}" in error
    assert httpserver.log == []
    with pytest.raises(ValueError, match=f"page_size is at most {largest} on openfoodfacts, got {largest + 1}"):
        collect(OpenFoodFactsCollector(), "champagne", tmp_path, HttpClient("test", 1.0), page_size=largest + 1)


def test_a_contact_no_http_header_can_carry_is_refused_before_any_request(httpserver, tmp_path, capsys, monkeypatch):
    """--contact (or PRODCAT_CONTACT) went into the User-Agent as given: a name in another script than Latin, or a
    line break, failed the first search as 'cannot fetch this address', the advice blaming --base-url; so did the CR
    a Windows .env file leaves at the end of PRODCAT_CONTACT, which is now dropped as the spaces around are."""
    serve_search(httpserver, search_pages(CHAMPAGNES[:2]))
    for contact, why in (
        ("王伟 <wang@example.org>", "holds characters outside Latin-1"),
        ("me@example.org\r\nX-Injected: 1", "holds a line break or another control character"),
    ):
        error = refusal(httpserver, tmp_path, capsys, "--contact", contact)
        assert f"argument --contact: {contact!r} {why}, which an HTTP header" in error
    assert httpserver.log == [] and not any(tmp_path.iterdir())
    monkeypatch.setenv("PRODCAT_CONTACT", "José <jose@example.org>\r")
    assert run(httpserver, tmp_path) == 0
    user_agent = httpserver.log[0][0].headers["User-Agent"]
    assert user_agent.endswith("(product catalogue collection; José <jose@example.org>)")


NOT_A_URL = "is not an http:// or https:// URL naming a host"


@pytest.mark.parametrize(
    ("base_url", "problem"),
    [("notaurl", NOT_A_URL), ("localhost:8080", NOT_A_URL), ("ftp://127.0.0.1:9", NOT_A_URL), ("http://", NOT_A_URL),
     ("http://:80", NOT_A_URL), ("http://[::1", f"{NOT_A_URL} (Invalid IPv6 URL)"),
     ("http://h:abc", "has the port 'abc', not a number from 1 to 65535"),
     ("http://h:99999", "has the port '99999', not a number from 1 to 65535"),
     ("http://h:0", "has the port '0', not a number from 1 to 65535"),
     ("http://h:-1", "has the port '-1', not a number from 1 to 65535"),
     ("http://user:pw@[::1]:8O80/api", "has the port '8O80', not a number from 1 to 65535"),
     ("http://exa mple.org", f"{NOT_A_URL} (it holds white space)"),
     (" http://127.0.0.1:9", f"{NOT_A_URL} (it holds white space)"),
     ("http://127.0.0.1:9\t", f"{NOT_A_URL} (it holds white space)")],
)  # fmt: skip
def test_a_base_url_no_request_can_reach_is_refused_before_any_request(tmp_path, capsys, base_url, problem):
    """--base-url notaurl was taken, and said only after every retry: 'unreachable', the advice blaming the
    network; one Python cannot parse failed the first page ('cannot fetch this address'), and so did a port that is
    no number or out of range, and white space (urllib drops one before the URL, and a tab anywhere, but keeps a space
    in the host), each once the output folder was made: 'Failed to parse: '127.0.0.1:abc' is not a valid host or
    port'."""
    with pytest.raises(SystemExit) as refused:
        main(["collect", "--query", "champagne", "--out", str(tmp_path / "out"), "--base-url", base_url,
              "--retries", "0", "--backoff", "0"])  # fmt: skip
    error = capsys.readouterr().err
    assert refused.value.code == 2
    assert error.splitlines()[-1] == (
        f"prodcat collect: error: argument --base-url: {base_url!r} {problem}: give the API's address as "
        "https://HOST[:PORT][/PATH]"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8080", "https://user:pw@[::1]:443/api/", "http://h:"])
def test_a_base_url_with_a_port_or_none_is_taken(tmp_path, base_url):
    args = build_parser().parse_args(["collect", "--query", "q", "--out", str(tmp_path), "--base-url", base_url])
    assert args.base_url == base_url


def test_a_query_typed_in_a_terminal_that_is_not_utf8_is_refused_saying_so(httpserver, tmp_path, capsys):
    """'pâte' typed in a Latin-1 terminal reaches Python as 'p\\udce2te' (the byte kept as a surrogate), which
    crashed the run with a UnicodeEncodeError traceback."""
    error = refusal(httpserver, tmp_path, capsys, query="p\udce2te")
    assert "argument --query: is not UTF-8 text ('p\\udce2te'): the terminal sends" in error
    assert error.endswith("another encoding; set it to UTF-8\n")
    assert httpserver.log == []


def test_a_query_with_decomposed_accents_resumes_the_same_query_typed_with_composed_ones(httpserver, tmp_path):
    """'crémant' from a macOS terminal ('e' and a combining accent) was another query than 'crémant' typed
    elsewhere: sent as such, and its saved pages not found."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path, query="cr\u00e9mant") == 0
    assert run(httpserver, tmp_path, query="cre\u0301mant") == 0
    assert search_requests(httpserver) == [1, 2, 3]  # the second run from the pages saved
    assert {request.args["search_terms"] for request, _ in httpserver.log} == {"cr\u00e9mant"}


def test_a_collection_whose_report_holds_the_query_decomposed_is_resumed(httpserver, tmp_path, capsys):
    """A run before the command line composed accents wrote 'crémant' from a macOS terminal decomposed in
    collect.json; the same query was then refused as another one's collection: "holds the collection of 'crémant'
    from openfoodfacts: collecting 'crémant' ... there would replace its products.csv"."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path, "--max-products", "2", query="cr\u00e9mant") == 0
    report_file = tmp_path / "collect.json"
    report_file.write_text(json.dumps({**json.loads(report_file.read_text()), "query": "cre\u0301mant"}))
    capsys.readouterr()
    assert run(httpserver, tmp_path, query="cr\u00e9mant") == 0, capsys.readouterr().err
    assert json.loads(report_file.read_text())["stopped_by"] == "exhausted"


def test_a_query_typed_with_other_spacing_resumes_the_same_query(httpserver, tmp_path, capsys):
    """'pâte  à tartiner' (two spaces, a tab or a no-break space pasted) was another query than 'pâte à tartiner',
    which the API answers alike: a re-run typed otherwise was refused as another query's collection ("holds the
    collection of 'pâte  à tartiner'"), the difference hard to see in the message."""
    serve_search(httpserver, search_pages(CHAMPAGNES))
    assert run(httpserver, tmp_path, query="p\u00e2te  \u00e0\ttartiner") == 0
    assert run(httpserver, tmp_path, query="p\u00e2te \u00e0\u00a0tartiner ") == 0, capsys.readouterr().err
    assert search_requests(httpserver) == [1, 2, 3]  # the second run from the pages saved
    assert {request.args["search_terms"] for request, _ in httpserver.log} == {"p\u00e2te \u00e0 tartiner"}
    # a collection whose report holds the query as typed then (before spacing was collapsed) is resumed too
    report_file = tmp_path / "collect.json"
    report_file.write_text(json.dumps({**json.loads(report_file.read_text()), "query": "p\u00e2te  \u00e0 tartiner"}))
    assert run(httpserver, tmp_path, query="p\u00e2te \u00e0 tartiner") == 0, capsys.readouterr().err


def test_a_query_matching_nothing_says_so_and_writes_an_empty_catalogue(httpserver, tmp_path, capsys):
    serve_search(httpserver, {})
    assert run(httpserver, tmp_path, query="zzzz") == 0
    assert "no product matches 'zzzz' on openfoodfacts" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "products.csv").empty


def test_results_that_are_all_unusable_are_not_said_to_match_nothing(httpserver, tmp_path, capsys):
    serve_search(httpserver, search_pages([{"product_name": "Champagne sans code-barres"}, None]))
    assert run(httpserver, tmp_path) == 0
    out = capsys.readouterr().out
    assert "none of the 2 results for 'champagne' on openfoodfacts could be used (see the errors)" in out
    assert "no product matches" not in out and "2 error(s)" in out


def test_the_summary_writes_counts_as_the_other_commands_do(capsys) -> None:
    """collect's closing lines wrote '12345 products' where every other command writes '12,345' (27b24a0), and '1
    products'."""
    from prodcat.collect.command import _print_summary
    from prodcat.collect.pipeline import CollectReport

    report = CollectReport(source="openfoodfacts", query="champagne", base_url="http://x", started="now")
    report.counts = {"products": 12345, "with_category": 12001, "with_photo": 11000, "earlier_products_dropped": 1500}
    report.counts |= {"orphan_photos_removed": 1200, "photos_not_tried": 3000}
    _print_summary(report, "out")
    out = capsys.readouterr().out
    assert "12,345 products (12,001 with a category, 11,000 with a photo) written to" in out
    assert "1,500 product(s) of the earlier" in out and "1,200 photo(s) of products" in out
    assert "3,000 photo(s) not tried" in out
    report.counts = {"products": 1, "with_category": 1, "with_photo": 0}  # said '1 products (...)'
    _print_summary(report, "out")
    assert "1 product (1 with a category, 0 with a photo) written to" in capsys.readouterr().out
