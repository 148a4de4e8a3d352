"""What serve's --cors-origins (PRODCAT_CORS_ORIGINS) takes as an origin: one a browser may send, written as it sends
it, since CORS compares the ``Origin`` header with each origin given as text."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from prodcat.serve.settings import ServeSettings


@pytest.mark.parametrize("pattern", ["https://*.example.com", "https://shop.example.*", "http://*:3000"])
def test_an_origin_with_a_wildcard_is_refused_rather_than_matching_no_page(pattern: str) -> None:
    """https://*.example.com was taken, and matched no page: CORS (Starlette's CORSMiddleware) compares whole origins,
    so a page of https://shop.example.com, which the wildcard was meant to let in, had its preflight refused (400),
    and the server had started without a word."""
    with pytest.raises(ValidationError, match="an origin is matched as written, with no wildcard; give each origin"):
        ServeSettings(cors_origins=pattern)


@pytest.mark.parametrize("host", ["shop example.com", "bücher.example", "%2a.example.com"])
def test_an_origin_whose_host_no_browser_sends_is_refused(host: str) -> None:
    """A host with a space, a letter outside ASCII (a browser sends an IDNA name as xn--...) or a %-escape matched no
    page either, and was taken."""
    with pytest.raises(ValidationError, match="is not an origin: give scheme://host"):
        ServeSettings(cors_origins=f"https://{host}")


def test_an_origin_is_written_as_a_browser_sends_it() -> None:
    """A port's leading zeros are left out, as a browser writes it (http://localhost:03000 matched no page), as the
    scheme's default port is; an IPv6 address and a name with an underscore or in IDNA form are taken as they are."""
    given = "http://localhost:03000,http://[::1]:8080,http://[::1]:80,https://a_b.example,https://xn--bcher-kva.example"
    assert ServeSettings(cors_origins=given).cors_origins == (
        "http://localhost:3000",
        "http://[::1]:8080",
        "http://[::1]",
        "https://a_b.example",
        "https://xn--bcher-kva.example",
    )


def test_a_file_name_the_shell_put_in_place_of_an_unquoted_star_is_refused_saying_to_quote_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prodcat serve MODEL --cors-origins *` in a folder holding catalog.csv: the shell gave catalog.csv, refused as
    'is not an origin' without a word of why; the refusal now says to quote the star. A value naming no file of the
    folder is refused as before, with no word of the shell."""
    quote = r"is a file or folder here, as the shell puts in place of an unquoted \*: give \* in quotes \('\*'\) so"
    for name, make in (("catalog.csv", Path.touch), ("photos", Path.mkdir)):
        folder = tmp_path / f"with-{name}"
        folder.mkdir()
        make(folder / name)
        (folder / ".hidden").touch()  # left out of * by the shell
        monkeypatch.chdir(folder)
        with pytest.raises(ValidationError, match=rf"'{name}' is not an origin: give scheme://host.*{quote}"):
            ServeSettings(cors_origins=name)
        with pytest.raises(ValidationError, match="is not an origin") as refused:
            ServeSettings(cors_origins="shop.example.com")
        assert "quotes" not in str(refused.value)


def test_one_of_several_files_is_not_taken_for_an_unquoted_star(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a folder of a.html and b.html, 'a.html' was refused as 'a file or folder here, as the shell puts in place
    of an unquoted *', though the shell's * gives both names there (and the command line says so itself). It is
    said only of the folder's one file or folder now; 'a.html' is refused as no origin, with no word of the shell."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.html").touch()
    (tmp_path / "b.html").touch()
    with pytest.raises(ValidationError, match=r"'a\.html' is not an origin") as refused:
        ServeSettings(cors_origins="a.html")
    assert "shell" not in str(refused.value)
