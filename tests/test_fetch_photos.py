"""``prodcat fetch-photos``: a catalogue whose photos are URLs (a marketplace's export), its photos served from
loopback (no internet here), made a catalogue prodcat reads."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from prodcat.catalog.loaders import load_catalog
from prodcat.cli import main
from prodcat.collect import HttpClient
from prodcat.image.decode import load_image

#: fast and impatient, as test_collect's runs: a local server needs neither politeness nor long backoff
FAST = ["--image-rate", "1000", "--backoff", "0", "--retries", "2"]


def fetch(table: Path, out: Path, *options: str) -> int:
    """``prodcat fetch-photos`` on ``table`` into ``out``, the local servers' host (loopback) allowed."""
    return main(["fetch-photos", str(table), "--out", str(out), "--private-host", "localhost", *FAST, *options])


def write_table(path: Path, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["product_id,title,description,image,category,price", *rows]) + "\n", encoding="utf-8")
    return path


def paths_asked(server: HTTPServer, since: int = 0) -> list[str]:
    return [request.path for request, _ in server.log[since:]]


def test_a_table_of_photo_urls_is_written_with_the_photos_files_and_a_rerun_fetches_nothing(
    httpserver: HTTPServer, tmp_path: Path, jpeg_bytes: Callable[..., bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """A table whose photos were URLs was read without any photo, each product said to have 'a URL: photos are read
    from files, download them'. fetch-photos downloads them and writes the table naming the files: the good photo
    decodes, the 404 and the text served as a photo are reported and their products written without a photo, a local
    photo and an empty one are kept as they were; a re-run fetches nothing."""
    photo = jpeg_bytes()
    httpserver.expect_request("/p/mug.jpg").respond_with_data(photo, content_type="image/jpeg")
    httpserver.expect_request("/p/gone.jpg").respond_with_data("Not Found", status=404)
    httpserver.expect_request("/p/notice.jpg").respond_with_data("Sorry, no image.\n", content_type="image/jpeg")
    (tmp_path / "shop" / "photos").mkdir(parents=True)
    (tmp_path / "shop" / "photos" / "lamp.jpg").write_bytes(jpeg_bytes(colour="red"))
    table = write_table(
        tmp_path / "shop" / "export.csv",
        [
            f"mug,Ceramic mug,350 ml,{httpserver.url_for('/p/mug.jpg')},Kitchen > Mugs,4.50",
            f"towel,Bath towel,Cotton,{httpserver.url_for('/p/gone.jpg')},Home > Towels,9.90",
            f"watch,Analog watch,Steel strap,{httpserver.url_for('/p/notice.jpg')},Watches,120",
            "lamp,Desk lamp,LED,photos/lamp.jpg,Home > Lamps,30",
            "vase,Glass vase,,,Home > Decor,12",
        ],
    )
    assert [issue.field for issue in load_catalog(table).issues] == ["image"] * 3  # the URLs: read without photo
    out = tmp_path / "fetched"
    assert fetch(table, out) == 0

    catalog = load_catalog(out / "products.csv")
    assert catalog.issues == []
    frame = catalog.frame.set_index("product_id")
    assert frame.loc["mug", "image"] == str(out / "images" / "mug.jpeg")
    assert load_image(Path(frame.loc["mug", "image"]).read_bytes()).size == (64, 48)
    assert frame.loc["lamp", "image"] == str(tmp_path / "shop" / "photos" / "lamp.jpg")  # its file, absolute
    assert frame.loc[["towel", "watch", "vase"], "image"].isna().all()  # kept, to be classified from their text
    assert frame.loc["towel", "image_url"] == httpserver.url_for("/p/gone.jpg")
    assert frame.loc["mug", "category"] == "Kitchen > Mugs" and frame.loc["watch", "price"] == 120  # columns kept
    report = json.loads((out / "fetch.json").read_text(encoding="utf-8"))
    failures = {error["product_id"]: error["message"] for error in report["errors"]}
    assert failures.keys() == {"towel", "watch"}
    assert "HTTP 404" in failures["towel"] and "not an image" in failures["watch"]
    counts = report["counts"]
    assert (counts["photo_urls"], counts["photos_downloaded"], counts["photos_failed"]) == (3, 1, 2)
    assert (counts["products"], counts["with_photo"], counts["input_issues"]) == (5, 2, 0)
    said = capsys.readouterr().out
    assert "3 photo URLs: 1 downloaded, 2 failed\n5 products (2 with a photo) written to" in said

    written = (out / "products.csv").read_bytes()
    asked = len(httpserver.log)
    assert fetch(table, out) == 0
    assert paths_asked(httpserver, asked) == []  # the photo saved, and those that failed for good: none asked again
    again = json.loads((out / "fetch.json").read_text(encoding="utf-8"))["counts"]
    assert (again["photos_from_cache"], again["photos_failed_earlier"], again.get("photos_downloaded")) == (1, 2, None)
    assert (out / "products.csv").read_bytes() == written

    assert fetch(table, out, "--refresh") == 0  # tries the failed ones again
    assert sorted(paths_asked(httpserver, asked)) == ["/p/gone.jpg", "/p/notice.jpg"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _photo_server(port: int, photos: dict[str, bytes]) -> HTTPServer:
    server = HTTPServer(port=port)
    for name, data in photos.items():
        server.expect_request(f"/{name}").respond_with_data(data, content_type="image/jpeg")
    server.start()
    return server


def test_a_run_whose_photo_server_stopped_after_the_first_photo_resumes(
    tmp_path: Path,
    jpeg_bytes: Callable[..., bytes],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The photo host gone after the first photo: the second costs its retries, the third is not tried (the host is
    given up for the run), both products written without a photo; the same command again, the host back, fetches
    those two alone."""
    port = _free_port()
    photos = {f"{n}.jpg": jpeg_bytes(colour=colour) for n, colour in zip("123", ("red", "green", "blue"), strict=True)}
    server = _photo_server(port, photos)
    get_bytes = HttpClient.get_bytes

    def server_stops_after_the_first(self: HttpClient, url: str, max_bytes: int) -> Any:
        data = get_bytes(self, url, max_bytes)
        if server.is_running():
            server.stop()
        return data

    monkeypatch.setattr(HttpClient, "get_bytes", server_stops_after_the_first)
    table = write_table(
        tmp_path / "export.csv", [f"p{n},Product {n},,http://localhost:{port}/{n}.jpg,A,1" for n in "123"]
    )
    out = tmp_path / "out"
    assert fetch(table, out) == 0
    report = json.loads((out / "fetch.json").read_text(encoding="utf-8"))
    counts = report["counts"]
    assert (counts["photos_downloaded"], counts["photos_failed"], counts["photos_not_tried"]) == (1, 1, 1)
    assert "unreachable" in report["errors"][0]["message"] and report["errors"][1]["message"].startswith("not tried")
    assert not (out / "failed_photos.json").exists()  # no failure for good: all tried again
    said = capsys.readouterr().out  # the photo not tried said once, with what to do (it was said twice)
    assert "3 photo URLs: 1 downloaded, 1 failed\n" in said and said.count("not tried") == 1
    assert "1 photo(s) not tried, their host being unreachable or rate limiting: run the same command again" in said
    frame = load_catalog(out / "products.csv").frame.set_index("product_id")
    assert frame.loc["p1", "image"] == str(out / "images" / "p1.jpeg") and frame.loc[["p2", "p3"], "image"].isna().all()

    monkeypatch.undo()
    server = _photo_server(port, photos)
    try:
        assert fetch(table, out) == 0
        assert sorted(paths_asked(server)) == ["/2.jpg", "/3.jpg"]
    finally:
        server.stop()
    frame = load_catalog(out / "products.csv").frame.set_index("product_id")
    assert [Path(frame.loc[f"p{n}", "image"]).read_bytes() for n in "123"] == list(photos.values())


def test_ctrl_c_writes_the_catalogue_with_the_photos_saved_and_a_rerun_fetches_the_others(
    httpserver: HTTPServer, tmp_path: Path, jpeg_bytes: Callable[..., bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in "12":
        httpserver.expect_request(f"/{n}.jpg").respond_with_data(jpeg_bytes(), content_type="image/jpeg")
    table = write_table(
        tmp_path / "export.csv", [f"p{n},Product {n},,{httpserver.url_for(f'/{n}.jpg')},A,1" for n in "12"]
    )
    get_bytes = HttpClient.get_bytes

    def interrupted_at_the_second(self: HttpClient, url: str, max_bytes: int) -> Any:
        if url.endswith("/2.jpg"):
            raise KeyboardInterrupt
        return get_bytes(self, url, max_bytes)

    monkeypatch.setattr(HttpClient, "get_bytes", interrupted_at_the_second)
    out = tmp_path / "out"
    assert fetch(table, out) == 130
    assert json.loads((out / "fetch.json").read_text(encoding="utf-8"))["stopped_by"] == "interrupted"
    assert load_catalog(out / "products.csv").frame["image"].notna().tolist() == [True, False]
    monkeypatch.undo()
    asked = len(httpserver.log)
    assert fetch(table, out) == 0
    assert paths_asked(httpserver, asked) == ["/2.jpg"]
    assert load_catalog(out / "products.csv").frame["image"].notna().all()


def test_a_folder_holding_another_catalogue_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The catalogue's own folder's products.csv, and the photos of another catalogue, are not replaced."""
    mine = write_table(tmp_path / "shop" / "products.csv", ["mug,Mug,,,A,1"])
    assert fetch(mine, tmp_path / "shop") == 2
    assert "was not written by prodcat fetch-photos" in capsys.readouterr().err
    assert fetch(mine, tmp_path / "out") == 0
    other = write_table(tmp_path / "other.csv", ["cup,Cup,,,A,1"])
    assert fetch(other, tmp_path / "out") == 2
    assert f"holds the photos of {mine}" in capsys.readouterr().err


def test_a_photo_inside_the_output_folder_is_named_relative_to_it(
    tmp_path: Path, jpeg_bytes: Callable[..., bytes]
) -> None:
    """So that the folder, moved whole, still reads it."""
    (tmp_path / "out" / "own").mkdir(parents=True)
    (tmp_path / "out" / "own" / "mug.jpg").write_bytes(jpeg_bytes())
    table = write_table(tmp_path / "export.csv", ["mug,Mug,,out/own/mug.jpg,A,1"])
    assert fetch(table, tmp_path / "out") == 0
    assert "mug,Mug,,own/mug.jpg," in (tmp_path / "out" / "products.csv").read_text(encoding="utf-8")


def test_a_photo_host_that_is_not_public_is_refused_unless_named(
    httpserver: HTTPServer, tmp_path: Path, jpeg_bytes: Callable[..., bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """A table's URLs may have this machine fetch its own network's services, as an API's may: a host that is not
    public is refused as collect refuses it, the refusal naming the option that allows it, unless --private-host names
    it (the user's photo server). The refusal was recorded as a failure for good: the same command with --private-host
    then said 'failed in an earlier run, not tried again' and fetched nothing unless --refresh was added; it fetches
    the photo now, as no request had reached the host."""
    httpserver.expect_request("/mug.jpg").respond_with_data(jpeg_bytes(), content_type="image/jpeg")
    table = write_table(tmp_path / "export.csv", [f"mug,Mug,,{httpserver.url_for('/mug.jpg')},A,1"])
    assert main(["fetch-photos", str(table), "--out", str(tmp_path / "out"), *FAST]) == 0
    (error,) = json.loads((tmp_path / "out" / "fetch.json").read_text(encoding="utf-8"))["errors"]
    assert "refused: " in error["message"] and "is not a public address" in error["message"]
    assert error["message"].endswith("(--private-host localhost allows it)")
    assert paths_asked(httpserver) == []
    assert not (tmp_path / "out" / "failed_photos.json").exists()
    capsys.readouterr()
    assert fetch(table, tmp_path / "out") == 0
    assert paths_asked(httpserver) == ["/mug.jpg"]
    assert "1 photo URL: 1 downloaded\n" in capsys.readouterr().out


def test_the_photo_of_a_product_no_longer_given_by_url_is_removed(
    httpserver: HTTPServer,
    tmp_path: Path,
    jpeg_bytes: Callable[..., bytes],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Removed at the end of a run, said so on the console and in the log, in fetch-photos' words (the log said 'of
    products no longer collected', collect's)."""
    httpserver.expect_request("/mug.jpg").respond_with_data(jpeg_bytes(), content_type="image/jpeg")
    table = write_table(tmp_path / "export.csv", [f"mug,Mug,,{httpserver.url_for('/mug.jpg')},A,1", "cup,Cup,,,A,1"])
    assert fetch(table, tmp_path / "out") == 0
    assert (tmp_path / "out" / "images" / "mug.jpeg").is_file()
    write_table(table, ["mug,Mug,,,A,1", "cup,Cup,,,A,1"])
    capsys.readouterr()
    assert fetch(table, tmp_path / "out") == 0
    assert list((tmp_path / "out" / "images").iterdir()) == []
    assert "1 photo(s) of products no longer given by URL removed from" in capsys.readouterr().out
    assert f"removed 1 photo(s) of products no longer given by URL from {tmp_path / 'out' / 'images'}" in caplog.text
    assert load_catalog(tmp_path / "out" / "products.csv").frame["image"].isna().all()


def test_the_table_is_written_back_losing_none_of_its_columns_or_values(
    httpserver: HTTPServer, tmp_path: Path, jpeg_bytes: Callable[..., bytes], caplog: pytest.LogCaptureFixture
) -> None:
    """products.csv was the table as the loader types it: 4.50 written 4.5, 120 as 120.0 in a column of decimals, 3
    as 3.0 in a column of integers with a blank, true as True; the table's own product_id column vanished when
    --id-column named another; the photo cell of a JSON list of URLs kept its first URL only, and one neither a file
    nor a web URL (ftp://, a file not found) was written empty. Each is written as the table gave it now, the
    product_id column under another name, with a warning."""
    httpserver.expect_request("/a.jpg").respond_with_data(jpeg_bytes(), content_type="image/jpeg")
    first, second = httpserver.url_for("/a.jpg"), httpserver.url_for("/b.jpg")
    listed = json.dumps([first, second]).replace('"', '""')
    table = tmp_path / "export.csv"
    table.write_text(
        "sku,product_id,title,image,price,stock,gift\n"
        f'A1,old-1,Mug,"{listed}",4.50,3,true\n'
        "A2,old-2,Towel,ftp://photos.example/towel.jpg,120,,false\n"
        "A3,old-3,Lamp,photos/lamp.jpg,9.90,7,\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert fetch(table, out, "--id-column", "sku") == 0
    written = (out / "products.csv").read_text(encoding="utf-8").splitlines()
    assert written == [
        "product_id,title,description,image,category,image_url,product_id_source,price,stock,gift",
        f'A1,Mug,,images/A1.jpeg,,"{listed}",old-1,4.50,3,true',
        "A2,Towel,,,,ftp://photos.example/towel.jpg,old-2,120,,false",
        "A3,Lamp,,,,photos/lamp.jpg,old-3,9.90,7,",
    ]
    (warning,) = json.loads((out / "fetch.json").read_text(encoding="utf-8"))["warnings"][:1]
    said = "the column product_id is not read as the product_id (another column is): written as product_id_source"
    assert warning == {"field": "product_id", "message": said} and said in caplog.text
    assert load_catalog(out / "products.csv").frame.set_index("product_id").loc["A1", "price"] == 4.5
