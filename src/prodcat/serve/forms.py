"""Multipart forms read with python-multipart's public streaming parser, their text fields in their declared charset.

Starlette's ``request.form()`` reads a text field as the request's charset and, when its bytes are not in it, as
Latin-1 without a word: a title sent in another encoding was classified as mojibake and stored so in the review
queue. Its per-part ``Content-Type`` is not exposed either. So the parts are read here, on the public APIs of
python-multipart (a FastAPI dependency for forms) and Starlette's data structures, into the same ``FormData``:

- a text field is decoded by the charset its part declares (``Content-Type: text/plain; charset=...``), else the
  request's (``multipart/form-data; charset=...``), else UTF-8 (RFC 7578); bytes not in that charset get 422
  ``text_encoding`` naming the field, its charset and the first byte that does not decode (422 ``image_not_file``
  when they are a photo, sent with no filename); a charset Python does not know gets 415 ``text_charset``;
- a file part is spooled to a temporary file (in memory up to 1 MiB) as an ``UploadFile``;
- a body the parser refuses, one over a limit, or one that ends before its closing boundary (cut short: its last
  part would be left out without a word, as Starlette does) gets 400 ``invalid_multipart`` with the reason
  (Starlette answers "Invalid multipart data." alone).
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from tempfile import SpooledTemporaryFile

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile

from prodcat.serve.inputs import PICTURE_HEAD, ApiError, charset_parameter, malformed, picture_named

#: bytes of a file part kept in memory before it is written to a temporary file (as Starlette does)
SPOOL_BYTES = 1024 * 1024


@dataclass
class _Part:
    """The part being read: its headers, then its bytes (a text field) or its file."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str = ""
    data: bytearray = field(default_factory=bytearray)
    file: UploadFile | None = None


def _invalid(detail: str) -> ApiError:
    return ApiError(400, "invalid_multipart", detail)


class _FormCollector:
    """python-multipart's callbacks: each finished part becomes a ``(name, text or UploadFile)`` item."""

    def __init__(self, request_charset: str, max_files: int, max_fields: int, max_part_size: int) -> None:
        self.request_charset = request_charset
        self.max_files, self.max_fields, self.max_part_size = max_files, max_fields, max_part_size
        self.items: list[tuple[str, str | UploadFile]] = []
        self.files: list[UploadFile] = []
        self.text_fields = 0
        #: file bytes received by the last chunk: written by :func:`read_form` with ``await`` (a rolled-over
        #: temporary file is on disk, which must not block the event loop)
        self.pending_writes: list[tuple[UploadFile, bytes]] = []
        self.part = _Part()
        self.header_name = bytearray()
        self.header_value = bytearray()
        #: the closing boundary was read (python-multipart's ``finalize`` does not check it)
        self.ended = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": lambda data, start, end: self.header_name.extend(data[start:end]),
            "on_header_value": lambda data, start, end: self.header_value.extend(data[start:end]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_end(self) -> None:
        self.part.headers.append((bytes(self.header_name).lower(), bytes(self.header_value)))
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, disposition = parse_options_header(self._header(b"content-disposition"))
        if b"name" not in disposition:
            raise _invalid('The Content-Disposition header field "name" must be provided.')
        # names and filenames are only compared with the known fields: a byte outside the charset cannot match
        self.part.name = disposition[b"name"].decode(self.request_charset, errors="replace")
        if b"filename" not in disposition:
            self.text_fields += 1
            if self.text_fields > self.max_fields:
                # a photo sent without a filename is a text field: the likeliest cause, named
                detail = f"Too many text fields: {self.part.name!r} is one more than the {self.max_fields} this "
                detail += "endpoint takes (a photo is a file part: its Content-Disposition gives a filename)."
                raise _invalid(detail)
            return
        if len(self.files) >= self.max_files:
            raise _invalid(f"Too many files. Maximum number of files is {self.max_files}.")
        # closed with the form (FormData.close) or, when reading fails, by read_form
        spool = SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self.part.file = UploadFile(
            file=spool,  # type: ignore[arg-type]
            size=0,
            filename=disposition[b"filename"].decode(self.request_charset, errors="replace"),
            headers=Headers(raw=self.part.headers),
        )
        self.files.append(self.part.file)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.file is not None:
            self.pending_writes.append((self.part.file, data[start:end]))
            return
        if len(self.part.data) + end - start > self.max_part_size:
            raise _invalid(f"Part exceeded maximum size of {self.max_part_size // 1024}KB.")
        self.part.data.extend(data[start:end])

    def on_part_end(self) -> None:
        value = self.part.file if self.part.file is not None else self._text()
        self.items.append((self.part.name, value))

    def on_end(self) -> None:
        self.ended = True

    def _header(self, name: bytes) -> bytes:
        return next((value for header, value in self.part.headers if header == name), b"")

    def _text(self) -> str:
        what = f"field {self.part.name!r}"
        charset = declared_charset(self._header(b"content-type").decode("latin-1"), what) or self.request_charset
        try:
            return self.part.data.decode(charset)
        except UnicodeDecodeError as exc:
            if photo := picture_named(bytes(self.part.data[:PICTURE_HEAD])):
                # `curl -F 'image=<photo.jpg'` sends the file's bytes as text: its encoding is not what went wrong
                detail = (
                    f"{what} holds {photo} sent as a text field (its part gives no filename): send it as a file "
                    f"part, with a filename in its Content-Disposition (curl -F '{self.part.name}=@FILE')"
                )
                raise malformed("image_not_file", detail) from None
            detail = (
                f"{what} is not valid {charset} text (byte {self.part.data[exc.start]:#04x} at offset {exc.start}): "
                "send it in UTF-8, or declare its charset in the part's header (Content-Type: text/plain; charset=...)"
            )
            raise malformed("text_encoding", detail) from None


def declared_charset(content_type: str, what: str) -> str | None:
    """The codec named by the ``charset`` parameter of ``content_type``, if any; 415 when Python knows none."""
    if (name := charset_parameter(content_type)) is None:
        return None
    try:
        codec = codecs.lookup(name).name
        # Python's codecs of bytes to bytes (base64, zlib) or of host names (idna, punycode) are no charsets: they
        # raise on decoding, even bytes they cannot read with errors="replace" (as field names are read), not 422
        b"\xff\\".decode(codec, errors="replace")
    except (LookupError, UnicodeError):
        detail = f"{what} declares the charset {name!r}, which this server does not know"
        raise ApiError(415, "text_charset", detail) from None
    return codec


async def read_form(
    headers: Headers, stream: AsyncIterator[bytes], *, max_files: int, max_fields: int, max_part_size: int
) -> FormData:
    """The multipart form of a request's ``headers`` and body ``stream``: text fields as ``str``, file parts as
    ``UploadFile`` (the caller closes the form). At most ``max_files`` file parts, ``max_fields`` text fields,
    and ``max_part_size`` bytes per text field."""
    content_type = headers.get("content-type", "")
    boundary = parse_options_header(content_type)[1].get(b"boundary")
    if not boundary:
        raise _invalid("Missing boundary in multipart.")
    collector = _FormCollector(
        declared_charset(content_type, "the request") or "utf-8", max_files, max_fields, max_part_size
    )
    try:
        # inside the try: the parser refuses a boundary over its maximum length (256 bytes) when it is built
        parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
        async for chunk in stream:
            parser.write(chunk)
            for file, data in collector.pending_writes:
                await file.write(data)
            collector.pending_writes.clear()
        parser.finalize()
        if not collector.ended:
            raise _invalid("Invalid multipart data (the body ends before its closing boundary: cut short?)")
        for file in collector.files:
            await file.seek(0)
    except FormParserError as exc:
        _close(collector.files)
        detail = f"Invalid multipart data ({exc})"
        if "header size" in str(exc):
            detail += ": a part's headers, its filename included, are too long; send a shorter filename"
        raise _invalid(detail) from None
    except BaseException:
        _close(collector.files)
        raise
    return FormData(collector.items)


def _close(files: list[UploadFile]) -> None:
    for file in files:
        file.file.close()
