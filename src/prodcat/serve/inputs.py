"""Reading products out of requests and enforcing every limit, each refusal naming the limit and its value.

Status codes: 413 for anything too large (bytes, pixels, batch size), 415 for an
unsupported request or photo type (photos are typed by their content, never by
their name or declared type), 422 for anything malformed (corrupt photo, empty
file, text too long, missing title and photo).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from PIL import Image
from pydantic import BaseModel, TypeAdapter, ValidationError
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from prodcat.catalog.schema import given_product_id, is_readable, specification_text, with_specifications
from prodcat.config import validation_message
from prodcat.formatting import counted
from prodcat.image.decode import (
    DECODABILITY_SIDE,
    ImageDecodeError,
    load_image,
    open_lazily,
    size_pillow_refused,
    sniff_image_type,
    structure_refusal,
    unsupported_format,
    with_decoding,
)
from prodcat.serve.schemas import (
    MAX_PRODUCT_ID_CHARS,
    MAX_SPECIFICATIONS,
    BatchProductIn,
    ErrorOut,
    JsonFloat,
    OptionalSpecifications,
    ProductIn,
    id_as_text,
    specification_pairs,
    unstorable_reason,
)
from prodcat.serve.settings import ServeSettings, text_over_limit
from prodcat.silenced import Silenced, silenced


class ApiError(HTTPException):
    """A refusal with its HTTP status; ``limit`` is the setting that refused it, if any.

    An ``HTTPException`` so that FastAPI lets it through when it interrupts the parsing of a body (a body
    over ``max_request_bytes`` streamed to ``POST /reviews/{id}``): any other exception there becomes a 400.
    """

    def __init__(
        self, status: int, error: str, detail: str, *, limit: str | None = None, limit_value: Any = None
    ) -> None:
        super().__init__(status, detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.limit = limit
        self.limit_value = limit_value
        #: the refused product's own id, when it gave one (a batch's errors name their product)
        self.product_id: str | None = None

    def about(self, product_id: str | None) -> ApiError:
        """This refusal for the product ``product_id``: a copy, as one refusal (a photo part, a failed
        review-store write) can be shared by several items of a batch."""
        if product_id == self.product_id:
            return self
        error = ApiError(self.status, self.error, self.detail, limit=self.limit, limit_value=self.limit_value)
        error.product_id = product_id
        return error

    def to_out(self, request_id: str | None) -> ErrorOut:
        return ErrorOut(
            error=self.error,
            detail=self.detail,
            limit=self.limit,
            limit_value=self.limit_value,
            status=self.status,
            request_id=request_id,
            product_id=self.product_id,
        )


#: the most bytes one character of text takes in JSON ("\\u00e9"; an astral character is one character in
#: Python and two such escapes)
MAX_JSON_BYTES_PER_CHAR = 12

#: the charsets a JSON body may declare: UTF-8 and its subset US-ASCII (which older clients declare), as Python's codecs
#: name them
_JSON_READABLE_CODECS = frozenset({"utf-8", "ascii"})
#: what a JSON body in another encoding is told
JSON_IS_UTF8 = "JSON is UTF-8 (RFC 8259): send the body in UTF-8, declaring no charset or charset=utf-8"


def over_limit(status: int, limit: str, value: Any, what: str) -> ApiError:
    """An :class:`ApiError` whose message says which setting refused the request and its value."""
    return ApiError(status, limit, f"{what} exceeds the limit {limit}={value}", limit=limit, limit_value=value)


def malformed(error: str, detail: str) -> ApiError:
    return ApiError(422, error, detail)


@dataclass
class ProductRequest:
    """One product as received: text, and the photo's bytes and sniffed type if it came with one."""

    title: str = ""
    description: str = ""
    product_id: str | None = None
    image_bytes: bytes | None = None
    image_type: str | None = None
    #: the photo as the model is handed it once checked: its bytes, holding the pixels the check decoded when they are
    #: what the model reads (:func:`check_image_content`); ``None`` before its check
    checked_image: bytes | None = None


def check_text(product: ProductRequest, settings: ServeSettings) -> None:
    """Refuse text the model or the review store cannot take, and products with nothing to classify."""
    if over := text_over_limit(product.title, product.description, settings.max_text_chars):
        name, length = over
        raise over_limit(422, "max_text_chars", settings.max_text_chars, f"{name} of {length} characters")
    for name in ("title", "description"):
        check_storable(name, getattr(product, name))
    if product.product_id is not None:
        check_product_id(product.product_id)
    if product.image_bytes is None and not (is_readable(product.title) or is_readable(product.description)):
        # markup, punctuation or invisible characters alone would be classified from nothing
        detail = "give a title or description with a letter or a digit, or a photo (multipart field 'image')"
        raise malformed("empty_product", detail)


def check_storable(name: str, value: str) -> None:
    """Refuse text that a PostgreSQL review store cannot hold (see :func:`unstorable_reason`)."""
    if (refusal := _unstorable(name, value)) is not None:
        raise refusal


def _unstorable(name: str, value: str) -> ApiError | None:
    problem = unstorable_reason(value)
    return None if problem is None else malformed(problem[0], f"{name} {problem[1]}")


def check_product_id(product_id: str) -> None:
    """Refuse a ``product_id`` (stripped) the API does not take, with one code and message wherever it is given: a
    product's, in JSON or multipart, and the ``GET /reviews`` filter's."""
    if (refusal := _product_id_refusal(product_id)) is not None:
        raise refusal


def _product_id_refusal(product_id: str) -> ApiError | None:
    if len(product_id) > MAX_PRODUCT_ID_CHARS:
        detail = f"product_id of {len(product_id)} characters; at most {MAX_PRODUCT_ID_CHARS}"
        return malformed("product_id_length", detail)
    return _unstorable("product_id", product_id)


def check_image_bytes(data: bytes, settings: ServeSettings) -> str:
    """Size and type of an uploaded photo, by content; returns the sniffed type (``"jpeg"``, ...)."""
    if not data:
        raise malformed("image_empty", "the image file is empty (0 bytes)")
    if len(data) > settings.max_image_bytes:
        raise over_limit(413, "max_image_bytes", settings.max_image_bytes, "image file size")
    kind = sniff_image_type(data)
    if kind is None or kind not in settings.image_types:
        found = kind.upper() if kind else unsupported_format(data) or _photo_as_text(data) or "not an image"
        raise ApiError(
            415,
            "image_type",
            f"image content is {found}; accepted types (by content) are {', '.join(settings.image_types)}",
            limit="image_types",
            limit_value=list(settings.image_types),
        )
    return kind


#: how much of the head of content that is no image is read to tell a picture in it, as bytes (a multipart text
#: field) or written as text (a data URL, base64): a photo's signature is in its first bytes, an ISO media file's
#: brands in its first dozens
PICTURE_HEAD = 1024
#: the head of a data URL (RFC 2397): ``data:``, a media type and its parameters (``;base64``), then a comma
_DATA_URL = re.compile(rb"data:([\w.+-]+/[\w.+-]+)?(;[^,;]*)*,", re.IGNORECASE)


def _photo_as_text(data: bytes) -> str | None:
    """What content that is no image is when it is a photo written as text, as a browser's ``readAsDataURL`` or a
    JSON API gives it (a data URL, or base64 of the standard or the URL-safe alphabet): the client is told to send
    the bytes themselves. Else ``None``."""
    head = b"".join(data[:PICTURE_HEAD].split())  # base64 wrapped in lines, as MIME writes it
    if _DATA_URL.match(head):
        return "a data URL (data:...;base64,...), not the photo's bytes: send the file itself"
    whole = head[: len(head) // 4 * 4]  # whole groups of 4 characters: with or without its padding
    for altchars in (None, b"-_"):  # the standard alphabet, then the URL-safe one (RFC 4648 section 5)
        try:
            decoded = base64.b64decode(whole, altchars=altchars, validate=True)
        except binascii.Error:
            continue
        if photo := picture_named(decoded):
            return f"base64 text of {photo}, not the photo's bytes: send the file itself, not encoded"
    return None


def picture_named(data: bytes) -> str | None:
    """What ``data`` is when it begins a picture: ``"a JPEG photo"`` for a type :func:`sniff_image_type` tells, or a
    format :func:`unsupported_format` names (``"an SVG drawing"``); else ``None``."""
    if kind := sniff_image_type(data):
        return f"a {kind.upper()} photo"
    return unsupported_format(data)


def check_image_content(data: bytes, settings: ServeSettings, side: int | None = DECODABILITY_SIDE) -> bytes:
    """Refuse a photo whose declared size exceeds ``max_pixels`` (413) or that does not decode (422). CPU-bound.

    The photo is decoded as the model decodes it, at ``side`` (the longest side its photo encoder reads; a JPEG
    decoded at reduced scale), and returned as :class:`~prodcat.image.decode.DecodedBytes` holding those pixels
    (:func:`~prodcat.image.decode.with_decoding`): the model reads them rather than decoding the photo again, the
    same pixels as it would decode itself. ``side`` defaults to :data:`DECODABILITY_SIDE`, the cheapest check, for a
    model that reads no photo.
    """
    try:
        # before its header is opened for its size: opening reads every chunk of a PNG
        if (kind := sniff_image_type(data)) and (reason := structure_refusal(data, kind)):
            raise ImageDecodeError(reason)
        _check_declared_pixels(data, settings.max_pixels)
        decoded = load_image(data, max_side=side, max_pixels=settings.max_pixels, max_bytes=settings.max_image_bytes)
    except ImageDecodeError as exc:
        raise malformed("image_corrupt", f"the image cannot be decoded: {exc.reason}") from exc
    return with_decoding(data, decoded, side, max_pixels=settings.max_pixels, max_bytes=settings.max_image_bytes)


class LargePhoto(Silenced):
    """Pillow's warning that a photo is over its pixel limit, but under twice it: the server's own ``max_pixels``
    decides, and photos are checked in the request threads at once (``warnings.catch_warnings`` is not thread-safe:
    concurrent checks could leave its filter behind, or drop another's)."""

    category = Image.DecompressionBombWarning


def _check_declared_pixels(data: bytes, max_pixels: int) -> None:
    """Width x height from the header alone (nothing decoded); content that is no image, or a header Pillow cannot
    parse, is left to ``load_image`` to report."""
    if (kind := sniff_image_type(data)) is None:
        return
    try:
        with silenced(LargePhoto), open_lazily(data, kind) as img:
            width, height = img.size
    except Image.DecompressionBombError:
        what = f"image of {size_pillow_refused(data)} pixels"
        if max_pixels <= (pillow_limit := 2 * (Image.MAX_IMAGE_PIXELS or 0)):
            raise over_limit(413, "max_pixels", max_pixels, what) from None
        # a max_pixels set above what the plugin opens: the refusal is the plugin's, not the setting's
        detail = (
            f"{what} exceeds the {pillow_limit} pixels a {kind.upper()} photo is opened to (max_pixels={max_pixels})"
        )
        raise ApiError(413, "max_pixels", detail, limit="max_pixels", limit_value=max_pixels) from None
    except Exception:
        return
    if width * height > max_pixels:
        raise over_limit(413, "max_pixels", max_pixels, f"image of {width}x{height} pixels")


async def read_upload(upload: UploadFile, settings: ServeSettings) -> tuple[bytes, str]:
    """The bytes of an uploaded photo (reading at most one byte past the limit) and its sniffed type."""
    data = await upload.read(settings.max_image_bytes + 1)
    return data, check_image_bytes(data, settings)


_SPECIFICATIONS = TypeAdapter(OptionalSpecifications)


def _read_specifications(raw: Any) -> OptionalSpecifications:
    """A product's specifications (read by :func:`read_json`), or refused 422 ``invalid_specifications``."""
    return validated(raw, _SPECIFICATIONS, "invalid_specifications", ("specifications",))


def product_from_json(body: bytes, settings: ServeSettings) -> ProductRequest:
    """``POST /predict`` with a JSON body: a text-only :class:`ProductIn`."""
    _check_json_size(body, 1, "the JSON body", settings)
    item = _parse_item(read_json(body, "invalid_json"), ProductIn, "invalid_json")
    if isinstance(item, ApiError):
        raise item
    return _product_request(item)


async def product_from_form(form: FormData, settings: ServeSettings) -> ProductRequest:
    """``POST /predict`` as multipart: fields ``title``, ``description``, ``specifications`` (JSON: an object,
    or a list of key/value pairs), ``product_id``, file ``image``."""
    _refuse_unknown_fields(form, {"title", "description", "specifications", "product_id", "image"})
    product_id = given_product_id(_text_field(form, "product_id"))
    with _naming(product_id):
        return await _form_product(form, product_id, settings)


async def _form_product(form: FormData, product_id: str | None, settings: ServeSettings) -> ProductRequest:
    specifications = _text_field(form, "specifications")
    _check_json_size(specifications.encode("utf-8"), 1, "the specifications field", settings)
    attributes: OptionalSpecifications = {}
    if specifications.strip():
        # a byte-order mark is ignored, as in a JSON body (json.loads skips it in bytes, not in text)
        raw = read_json(specifications.removeprefix("\ufeff"), "invalid_specifications", "the specifications field")
        attributes = _read_specifications(raw)
    product = ProductRequest(
        title=_text_field(form, "title"),
        description=_described(_text_field(form, "description"), attributes),
        product_id=product_id,
    )
    image = _single(form, "image")
    if image is not None:
        if not isinstance(image, UploadFile):
            raise _not_a_file("image")
        product.image_bytes, product.image_type = await read_upload(image, settings)
    return product


def batch_items_from_json(body: bytes, settings: ServeSettings) -> list[ProductRequest | ApiError]:
    """``POST /predict-batch`` with a JSON array of :class:`ProductIn`: each item parsed on its own."""
    items = (_parse_item(raw, ProductIn) for raw in _json_array(body, settings))
    return [item if isinstance(item, ApiError) else _product_request(item) for item in items]


async def batch_items_from_form(form: FormData, settings: ServeSettings) -> list[ProductRequest | ApiError]:
    """``POST /predict-batch`` as multipart: a ``products`` field holding a JSON array of
    :class:`BatchProductIn`, whose ``image`` values name file parts of the same request."""
    products_field = _single(form, "products")
    if not isinstance(products_field, str):
        raise malformed("missing_products", "multipart batches need a text field 'products' holding a JSON array")
    results: list[ProductRequest | ApiError] = []
    # each part is read and checked once, and its bytes shared by the items naming it: one part named by
    # every item must not cost max_batch_items copies and checks
    photos: dict[str, tuple[bytes, str] | ApiError] = {}
    raws = _json_array(products_field.encode("utf-8"), settings, "the products field")
    _refuse_unnamed_parts(form, raws)
    for raw in raws:
        item = _parse_item(raw, BatchProductIn)
        if isinstance(item, ApiError):
            results.append(item)
            continue
        product = _product_request(item)
        if item.image is not None:
            if item.image not in photos:
                photos[item.image] = await _read_named_upload(form, item.image, settings)
            photo = photos[item.image]
            if isinstance(photo, ApiError):
                results.append(photo.about(product.product_id))
                continue
            product.image_bytes, product.image_type = photo
        results.append(product)
    return results


def _refuse_unnamed_parts(form: FormData, raws: list[Any]) -> None:
    """422 ``unknown_field`` for the parts of a multipart batch no item names (a refused item too), text fields and
    file parts alike, as a single product's form refuses a field it does not take: a photo no item names (an item
    whose ``image`` was left out or misspelt) was dropped without a word, its product classified without it. A part
    an item names is that item's: a text field there is its photo sent without a filename, refused with the item."""
    named = {image for raw in raws if isinstance(raw, dict) and isinstance(image := raw.get("image"), str)}
    stray = sorted(set(form.keys()) - {"products", *named})
    if stray:
        detail = f"unknown field(s) {stray}; a multipart batch takes 'products' and the photo parts its items name"
        raise malformed("unknown_field", detail)


def _not_a_file(name: str) -> ApiError:
    return malformed("image_not_file", f"{name!r} must be a file part (filename=...), not a text field")


async def _read_named_upload(form: FormData, name: str, settings: ServeSettings) -> tuple[bytes, str] | ApiError:
    """The bytes and type of the file part ``name``, or the error that refuses it."""
    try:
        upload = _single(form, name)
        if isinstance(upload, str):
            raise _not_a_file(name)
        if upload is None:
            raise malformed("image_missing", f"no file part named {name!r} in the request")
        return await read_upload(upload, settings)
    except ApiError as exc:
        return exc


def _json_array(body: bytes, settings: ServeSettings, what: str = "the body") -> list[Any]:
    """The products of a batch, ``what`` holding them (a multipart batch's field, not the body, is said so)."""
    _check_json_size(body, settings.max_batch_items, what, settings)
    items = read_json(body, "invalid_json", what)
    if not isinstance(items, list):
        raise malformed("invalid_json", f"{what} must be a JSON array of products")
    if len(items) > settings.max_batch_items:
        raise over_limit(413, "max_batch_items", settings.max_batch_items, f"a batch of {len(items)} products")
    if not items:
        raise malformed("empty_batch", "the batch is empty: send at least one product")
    _refuse_repeated_ids(items)
    return items


def _refuse_repeated_ids(items: list[Any]) -> None:
    """422 ``duplicate_product_id`` naming each ``product_id`` that several items of a batch give, and the items.

    Answers and review records name a product by its id: two products under one id (a client's mix-up) would be
    told apart by position alone, and ``train --feedback``, which keeps the last correction of each id, would
    train on one of them and silently drop the other's correction."""
    positions: dict[str, list[int]] = {}
    for position, raw in enumerate(items):
        if (product_id := _given_id(raw)) is not None:
            positions.setdefault(product_id, []).append(position)
    repeated = [
        f"{product_id!r} (items {', '.join(map(str, where))})"
        for product_id, where in positions.items()
        if len(where) > 1
    ]
    if repeated:
        detail = (
            f"product_id given to several items: {'; '.join(repeated)}; give each product its own id, or send it once"
        )
        raise malformed("duplicate_product_id", detail)


class _JsonObject(dict[str, Any]):
    """A JSON object as read, remembering the first key it gave more than once: ``json.loads`` and pydantic
    keep the last value of a repeated key and drop the others without a word."""

    repeated: str | None = None

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> _JsonObject:
        obj = cls(pairs)
        if len(obj) < len(pairs):
            seen: set[str] = set()
            for key, _ in pairs:  # the first key met a second time
                if key in seen:
                    obj.repeated = key
                    break
                seen.add(key)
        return obj


def _repeated_key(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """The path to the first key given twice in one object of ``value`` (read with
    :meth:`_JsonObject.from_pairs`), or ``None``. Iterative: batches nest as deep as the parser allows."""
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, _JsonObject) and item.repeated is not None:
            return (*where, item.repeated)
        children = item.items() if isinstance(item, dict) else enumerate(item) if isinstance(item, list) else ()
        stack.extend(((*where, key), child) for key, child in reversed(list(children)))
    return None


def _repeated_message(path: tuple[str | int, ...]) -> str:
    *parents, key = path
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parents).lstrip(".")
    where = f" in {where}" if where else ""
    advice = (
        " (to repeat an attribute, send the specifications as a list of key/value pairs)"
        if parents == ["specifications"]
        else ""
    )
    return f"the key {key!r} is given more than once{where}: only one of its values would be read{advice}"


def read_json(text: bytes | str, error: str, what: str = "the body") -> Any:
    """JSON as the API reads every JSON it is sent (one product, a batch, a specifications field, a review), so
    that each says the same of the same fault: refused 422 ``error`` when it does not parse, or holds an integer
    too long to convert. Objects are :class:`_JsonObject` (see :func:`validated`); a UTF-8 byte-order mark before
    bytes is skipped, as RFC 8259 lets parsers do (a file saved by Notepad, sent by PowerShell)."""
    try:
        if isinstance(text, bytes):
            # as UTF-8, as a declared charset must be (json_charset): json.loads also takes UTF-16 and UTF-32 bytes,
            # so a body refused 415 declaring charset=utf-16 was read declaring none
            text = text.decode("utf-8-sig")
        return json.loads(
            text, object_pairs_hook=_JsonObject.from_pairs, parse_int=_json_int, parse_float=JsonFloat.parsed
        )
    except _LongNumberError as exc:
        raise malformed(error, f"{what} holds {exc}") from None
    except UnicodeDecodeError as exc:
        detail = f"{what} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}): {JSON_IS_UTF8}"
        raise malformed(error, detail) from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise malformed(error, f"{what} is not valid JSON ({reason})") from None


def validated(raw: Any, model: type[BaseModel] | TypeAdapter[Any], error: str, path: tuple[str | int, ...] = ()) -> Any:
    """``raw`` (read by :func:`read_json`, found at ``path``) as ``model``, or refused 422 ``error``: a key given
    twice in one object (a parser keeps one of its values and drops the others without a word), or what the
    validation finds, in one line."""
    if (repeated := _repeated_key(raw, path)) is not None:
        raise malformed(error, _repeated_message(repeated))
    try:
        return model.validate_python(raw) if isinstance(model, TypeAdapter) else model.model_validate(raw)
    except ValidationError as exc:
        errors = [_readable_error(e) | {"loc": (*path, *map(_printable, e["loc"]))} for e in exc.errors()]
        raise malformed(error, validation_message(errors)) from None


#: pydantic's messages, written for Python callers, in the words of the JSON a client sent
_JSON_WORDS = {
    # an escape such as \ud800 without its pair: JSON allows it, and the text it gives has no UTF-8 form
    "string_unicode": "not valid Unicode: a lone surrogate (an escape such as \\ud800 without its pair); "
    "send UTF-8 text",
    "model_type": "Input should be an object",
}


def _readable_error(error: Any) -> Any:
    return error | {"msg": _JSON_WORDS[error["type"]]} if error["type"] in _JSON_WORDS else error


def _printable(part: str | int) -> str | int:
    """A key of the path to a fault as it can be answered (a lone surrogate in it as its escape)."""
    return part.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(part, str) else part


class _LongNumberError(ValueError):
    """An integer too long for Python to convert."""


def _json_int(digits: str) -> int:
    """A JSON integer; one too long for Python to convert is refused in the client's words (``int`` suggests
    ``sys.set_int_max_str_digits``)."""
    try:
        return int(digits)
    except ValueError:
        count = len(digits.lstrip("-"))
        raise _LongNumberError(
            f"a number of {count} digits, more than the {sys.get_int_max_str_digits()} this server reads"
        ) from None


def _check_json_size(body: bytes, products: int, what: str, settings: ServeSettings) -> None:
    """Refuse, before it is parsed, JSON longer than ``products`` products of the longest texts could be, or
    opening more arrays and objects than they hold.

    Parsing builds every container: 20 MB of ``[[],[],...`` are millions of lists, gigabytes and seconds
    of a blocked server. Counting them first costs a few passes over the bytes.
    """
    batch = products > 1
    limit, value = (
        ("max_batch_items", settings.max_batch_items) if batch else ("max_text_chars", settings.max_text_chars)
    )
    largest = products * (3 * settings.max_text_chars * MAX_JSON_BYTES_PER_CHAR + 4096)
    if len(body) > largest:
        most_chars = settings.max_text_chars
        detail = f"{what} of {len(body)} bytes (more than the {largest} that {counted(products, 'product')} with texts "
        detail += f"of at most {most_chars} characters can take)"
        raise over_limit(413, limit, value, detail)
    # a product: its object, its specifications' object or list, and the pairs of that list
    most = 1 + products * (2 + MAX_SPECIFICATIONS)  # and a batch's own array
    if body.count(b"[") + body.count(b"{") > most and (opened := _json_containers(body)) > most:
        detail = f"{what} opens {opened} JSON arrays and objects; {products} product(s) hold at most {most}"
        raise over_limit(413, limit, value, detail) if batch else malformed("invalid_json", detail)


def _json_containers(body: bytes) -> int:
    """The ``[`` and ``{`` of a JSON text outside its strings: the arrays and objects parsing it would build."""
    outside_strings = _JSON_ESCAPE.sub(b"", body).split(b'"')[::2]
    return sum(part.count(b"[") + part.count(b"{") for part in outside_strings)


_JSON_ESCAPE = re.compile(rb"\\.", re.DOTALL)


_Item = TypeVar("_Item", bound=ProductIn)  # ProductIn or BatchProductIn


def _parse_item(raw: Any, model: type[_Item], error: str = "invalid_item") -> _Item | ApiError:
    """``raw`` read as a ``model``, or its refusal (``error``) naming the product by the id it gives."""
    try:
        return validated(raw, model, error)
    except ApiError as exc:
        return (_sole_fault(raw, model) or exc).about(_given_id(raw))


def _sole_fault(raw: Any, model: type[ProductIn]) -> ApiError | None:
    """The refusal a product's form gives for the one thing wrong with the product ``raw``, when it is all that is
    wrong with it: keys ``model`` does not take (``unknown_field``), a key given twice (``repeated_field``), or
    specifications that are not an object or a list of pairs (``invalid_specifications``); ``None`` when something
    else is wrong with it, or several of these, for the caller's refusal listing every fault."""
    if not isinstance(raw, _JsonObject):
        return None
    known = set(model.model_fields)
    faults = []
    if unknown := set(raw) - known:
        faults.append(_unknown_field_error(unknown, known))
        if "image" in unknown:
            faults[-1].detail += "; a photo is sent in a multipart form, as its file part"
    if raw.repeated is not None:
        faults.append(malformed("repeated_field", _repeated_message((raw.repeated,))))
    if "specifications" in raw:
        try:
            _read_specifications(raw["specifications"])
        except ApiError as exc:
            faults.append(exc)
    try:
        validated({key: value for key, value in raw.items() if key in known - {"specifications"}}, model, "")
    except ApiError:
        return None
    return faults[0] if len(faults) == 1 else None


@contextmanager
def _naming(product_id: str | None) -> Iterator[None]:
    """Have a refusal raised within name the product by ``product_id``, if it is a usable id (see :func:`usable_id`),
    as the errors of a batch's items do."""
    try:
        yield
    except ApiError as exc:
        raise exc.about(usable_id(product_id)) from None


def _given_id(raw: Any) -> str | None:
    """The ``product_id`` a raw batch item gives, valid product or not, if it is a usable one: to name an item
    that is not a valid product, and to find ids that several items give."""
    given = id_as_text(raw.get("product_id")) if isinstance(raw, dict) else None
    return usable_id(given_product_id(given) if isinstance(given, str) else None)


def usable_id(product_id: str | None) -> str | None:
    """``product_id`` (stripped) if :func:`check_product_id` takes it, else ``None``: a refused item is not named by an
    id refused with it."""
    if product_id is None or _product_id_refusal(product_id) is not None:
        return None
    return product_id


def _product_request(item: ProductIn) -> ProductRequest:
    # an empty or blank id is no id, as an empty multipart field is
    description = _described(item.description, item.specifications)
    return ProductRequest(item.title, description, given_product_id(item.product_id))


def _described(description: str, specifications: OptionalSpecifications) -> str:
    """The description the model reads: followed by the specifications' text, as the loaders write it."""
    return with_specifications(description, specification_text(specification_pairs(specifications)))


def _single(form: FormData, name: str) -> str | UploadFile | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise malformed("repeated_field", f"field {name!r} appears {len(values)} times; send it once")
    return values[0] if values else None


def _text_field(form: FormData, name: str) -> str:
    value = _single(form, name)
    if isinstance(value, UploadFile):
        raise malformed("field_not_text", f"{name!r} must be a text field, not a file")
    return value or ""


def _refuse_unknown_fields(form: FormData, known: set[str]) -> None:
    if unknown := set(form.keys()) - known:
        raise _unknown_field_error(unknown, known)


def _unknown_field_error(unknown: set[str], known: set[str]) -> ApiError:
    return malformed("unknown_field", f"unknown field(s) {sorted(unknown)}; expected {sorted(known)}")


def accepted_media_type(request: Request, accepted: dict[str, str]) -> str:
    """The request's media type (parameters and case dropped) when it is one of ``accepted`` (media type →
    what to send it for), else a 415 naming them; a 415 too for a body sent compressed (``Content-Encoding``),
    which would be read as the garbled JSON or multipart it seems to be (RFC 9110: 415 for a content coding the
    server does not take)."""
    coding = request.headers.get("content-encoding", "").strip().lower()
    if coding not in ("", "identity"):
        detail = f"request Content-Encoding {coding!r} is not accepted: send the body uncompressed"
        raise ApiError(415, "content_encoding", detail)
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if media_type not in accepted:
        send = " or ".join(f"{kind} ({why})" if why else kind for kind, why in accepted.items())
        detail = f"request content type {media_type or '(none)'!r} is not accepted: send {send}"
        raise ApiError(415, "content_type", detail)
    charset = charset_parameter(content_type)
    if media_type == "application/json" and charset is not None and _codec(charset) not in _JSON_READABLE_CODECS:
        # refused rather than read as UTF-8 whatever it says (a Latin-1 'é' was an invalid-JSON 422 quoting Python's
        # decoder), or read in that charset (JSON no other client or server reads so; a body wrongly declared so
        # would become other characters without a word)
        detail = f"the request declares the charset {charset!r}: {JSON_IS_UTF8}"
        raise ApiError(415, "json_charset", detail)
    return media_type


def charset_parameter(content_type: str) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` value as given, if any: an empty one (``charset=``, a client's
    template left unfilled) declares none, as browsers read it."""
    charset = parse_options_header(content_type)[1].get(b"charset", b"").strip()
    return charset.decode("latin-1") if charset else None


def _codec(charset: str) -> str | None:
    """Python's name of the codec ``charset`` names (``"utf-8"`` for ``UTF8``, ``utf_8``, ...), if it knows one."""
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


async def read_small_json(request: Request, most_bytes: int) -> bytes:
    """The JSON body of a request that carries a few fields, read up to ``most_bytes`` (413 past them)."""
    accepted_media_type(request, {"application/json": ""})
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > most_bytes:
            raise ApiError(413, "body_size", f"a body of more than {most_bytes} bytes; this one has a few short fields")
    return bytes(body)
