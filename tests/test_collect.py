"""``prodcat collect``: Open Food Facts pages served from loopback (no internet here), end to end.

The payloads have the shape of ``/cgi/search.pl?json=1`` answers (``count``, ``page``, ``page_size``,
``products``) with the defects real ones have: missing fields, ``null``s, allergen markup in the
ingredients, non-Latin names, the same product on two pages, and photos that are not photos.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from prodcat.catalog.loaders import load_catalog
from prodcat.cli import main
from prodcat.collect import HttpClient, OpenFoodFactsCollector, RateLimiter, RecordError, collect

PAGE_SIZE = 3
#: fast and impatient: a local server needs neither politeness nor long backoff
FAST = ["--rate", "1000", "--image-rate", "1000", "--backoff", "0", "--retries", "2"]


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


def search_pages(products: list[dict[str, Any]], total: int | None = None) -> dict[int, dict[str, Any]]:
    """``products`` cut into JSON pages of :data:`PAGE_SIZE`, numbered from 1."""
    total = len(products) if total is None else total
    return {
        n // PAGE_SIZE + 1: {"count": total, "page": n // PAGE_SIZE + 1, "page_size": PAGE_SIZE, "skip": n,
                             "products": products[n : n + PAGE_SIZE]}
        for n in range(0, len(products), PAGE_SIZE)
    }  # fmt: skip


def serve_search(httpserver: HTTPServer, pages: dict[int, Any], failing: tuple[int, ...] = ()) -> None:
    """Answer ``/cgi/search.pl?page=N`` with ``pages[N]`` (an empty page past the end), HTTP 500 for ``failing``."""

    def answer(request: Request) -> Response:
        number = int(request.args["page"])
        if number in failing:
            return Response("Internal Server Error", status=500)
        page = pages.get(number, {"count": 0, "page": number, "page_size": PAGE_SIZE, "products": []})
        return Response(json.dumps(page), content_type="application/json")

    httpserver.expect_request("/cgi/search.pl").respond_with_handler(answer)


def search_requests(httpserver: HTTPServer) -> list[int]:
    """The page numbers asked for, in order (retries included)."""
    return [int(request.args["page"]) for request, _ in httpserver.log if request.path == "/cgi/search.pl"]


def run(httpserver: HTTPServer, out: Path, *options: str, query: str = "champagne") -> int:
    base = httpserver.url_for("/")
    return main(["collect", "--query", query, "--out", str(out), "--base-url", base, "--page-size",
                 str(PAGE_SIZE), *FAST, *options])  # fmt: skip


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
    assert "Traceback" not in error
    assert len(pd.read_csv(tmp_path / "products.csv", dtype=str)) == 3  # page 1 is kept
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["stopped_by"] == "error" and "HTTP 500" in report["fatal_error"]


def test_an_api_repeating_the_same_page_is_not_followed_forever(httpserver, tmp_path):
    same_page = {"products": CHAMPAGNES[:PAGE_SIZE]}  # and no count: the end is unknown
    serve_search(httpserver, {n: same_page for n in range(1, 100)})
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [1, 2]
    report = json.loads((tmp_path / "collect.json").read_text())
    assert report["counts"]["products"] == PAGE_SIZE and "ignore paging" in report["errors"][-1]["message"]


def test_a_page_that_is_not_json_is_an_error_naming_the_page(httpserver, tmp_path, capsys):
    httpserver.expect_request("/cgi/search.pl").respond_with_data("<html>maintenance</html>", content_type="text/html")
    assert run(httpserver, tmp_path) == 2
    error = capsys.readouterr().err
    assert "error: page 1:" in error and "not JSON (text/html" in error and "nothing was collected" in error
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
    urls = {name: httpserver.url_for(f"/images/{name}") for name in [*photos, "missing.jpg"]}
    products = [
        off_record("1", "Good photo", image_front_url=urls["good.jpg"]),
        off_record("2", "Truncated photo", image_front_url=urls["truncated.jpg"]),
        off_record("3", "Text as a photo", image_front_url=urls["notice.jpg"]),
        off_record("4", "Photo gone", image_front_url=urls["missing.jpg"]),
        off_record("5", "No photo"),
    ]
    serve_search(httpserver, search_pages(products))
    assert run(httpserver, tmp_path, "--images") == 0

    catalog = load_catalog(tmp_path / "products.csv")
    assert catalog.issues == []
    frame = catalog.frame.set_index("product_id")
    assert frame.loc["1", "image"] == str(tmp_path / "images" / "1.jpeg")
    assert Path(frame.loc["1", "image"]).read_bytes() == photos["good.jpg"][0]
    assert frame.loc[["2", "3", "4", "5"], "image"].isna().all()
    assert frame.loc["2", "image_url"] == urls["truncated.jpg"]  # the failed photo's address is kept
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["1.jpeg"]
    report = json.loads((tmp_path / "collect.json").read_text())
    failures = {e["product_id"]: e["message"] for e in report["errors"] if e["field"] == "image"}
    assert failures.keys() == {"2", "3", "4"}
    assert "truncated or corrupt" in failures["2"]
    assert "not an image (content looks like text)" in failures["3"]
    assert "HTTP 404" in failures["4"]
    assert report["counts"]["photos_downloaded"] == 1 and report["counts"]["with_photo"] == 1

    # a re-run reads the saved pages and the saved photo; only the photos that failed are asked for again
    requests_before = len(httpserver.log)
    assert run(httpserver, tmp_path, "--images") == 0
    again = [request.path for request, _ in httpserver.log[requests_before:]]
    assert sorted(again) == ["/images/missing.jpg", "/images/notice.jpg", "/images/truncated.jpg"]
    rerun = json.loads((tmp_path / "collect.json").read_text())["counts"]
    assert rerun["pages_from_cache"] == 2 and rerun.get("pages_fetched", 0) == 0 and rerun["photos_from_cache"] == 1
    assert load_catalog(tmp_path / "products.csv").frame.equals(catalog.frame)


def test_photos_above_the_size_limit_are_refused_while_downloading(httpserver, tmp_path):
    photo = jpeg_bytes(256)
    httpserver.expect_request("/images/large.jpg").respond_with_data(photo, content_type="image/jpeg")
    serve_search(
        httpserver,
        search_pages([off_record("1", "Large photo", image_front_url=httpserver.url_for("/images/large.jpg"))]),
    )
    client = HttpClient("test", 1000.0, retries=0)
    collector = OpenFoodFactsCollector(httpserver.url_for("/"))
    report = collect(collector, "champagne", tmp_path, client, image_client=client, max_image_bytes=len(photo) - 1)
    assert [(e["product_id"], e["field"]) for e in report.errors] == [("1", "image")]
    assert f"larger than the limit of {len(photo) - 1} bytes" in report.errors[0]["message"]
    assert load_catalog(tmp_path / "products.csv").frame["image"].isna().all()
    assert not list((tmp_path / "images").iterdir())


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
    (saved,) = (tmp_path / "pages").glob("*/page-0002.json")
    saved.write_text('{"count": 9, "products": [')
    assert run(httpserver, tmp_path) == 0
    assert search_requests(httpserver) == [2, 3, 1, 2, 3, 2]


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


def test_rate_limiter_spaces_request_starts():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        limiter.wait()
    assert slept == [0.25, 0.25]
    now[0] += 10.0  # idle for a while: the next request goes at once, with no burst credit saved up
    limiter.wait()
    limiter.wait()
    assert slept == [0.25, 0.25, 0.25]


def test_collect_api_refuses_a_non_positive_limit(tmp_path):
    with pytest.raises(ValueError, match="max_products must be at least 1"):
        collect(OpenFoodFactsCollector(), "champagne", tmp_path, HttpClient("test", 1.0), max_products=0)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_retries_back_off_from_the_first_one():
    from urllib3.util.retry import RequestHistory

    from prodcat.collect.http import _LoggedRetry

    retry = _LoggedRetry(total=5, backoff_factor=1.5, backoff_max=60.0)
    waits = []
    for _ in range(4):
        retry = retry.new(history=(*retry.history, RequestHistory("GET", "/", None, 429, None)))
        waits.append(retry.get_backoff_time())
    assert waits == [1.5, 3.0, 6.0, 12.0]  # urllib3 alone: 0, 3, 6, 12


def test_a_servers_retry_after_is_waited_at_most_as_long_as_a_backoff():
    """``Retry-After: 3600`` must not hold the command silently for an hour."""
    from urllib3 import HTTPResponse

    from prodcat.collect.http import _LoggedRetry

    retry = _LoggedRetry(total=5, backoff_factor=1.0, backoff_max=60.0, respect_retry_after_header=True)
    for header, wait in (("3600", 60.0), ("7", 7.0)):
        response = HTTPResponse(status=429, headers={"Retry-After": header})
        assert retry.get_retry_after(response) == wait


def test_searches_go_at_the_rate_the_readme_states_by_default(httpserver, tmp_path, monkeypatch):
    """Without ``--rate``, searches start 60 / N seconds apart, N the searches a minute that the README gives
    as the API's stated limit. Observed on the rate limiter's clock, which the test drives: no real waiting."""
    import re

    from prodcat.collect import http

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    per_minute = int(re.search(r"stated\s+rate\s+\((\d+)\s+searches\s+a\s+minute", readme).group(1))
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    class ObservedRateLimiter(RateLimiter):
        def __init__(self, requests_per_second: float, **_: object) -> None:
            super().__init__(requests_per_second, clock=lambda: now[0], sleep=sleep)

    monkeypatch.setattr(http, "RateLimiter", ObservedRateLimiter)
    serve_search(httpserver, search_pages(CHAMPAGNES))
    base = httpserver.url_for("/")
    options = ["--page-size", str(PAGE_SIZE), "--backoff", "0", "--retries", "0"]  # FAST without --rate
    assert main(["collect", "--query", "champagne", "--out", str(tmp_path), "--base-url", base, *options]) == 0
    assert search_requests(httpserver) == [1, 2, 3]
    assert slept == pytest.approx([60 / per_minute] * 2)  # the first search at once, each next one a slot later
