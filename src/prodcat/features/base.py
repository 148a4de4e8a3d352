"""The one interface every feature extractor follows, text or image.

An extractor is a scikit-learn transformer over a *catalogue frame* (the
canonical table of :mod:`prodcat.catalog.schema`): ``fit(frame)`` learns what it
needs (a vocabulary, a codebook; nothing for pretrained encoders) and
``transform(frame)`` returns one row per product, shape ``(n_products, dim)``,
dense ``float32`` or ``scipy.sparse``.

Pretrained encoders subclass :class:`PretrainedEncoder`: they only say how to
turn a batch of *items* (texts, image paths) into vectors and how to key an
item; the base class looks every item up in the on-disk
:class:`~prodcat.features.cache.EmbeddingCache` first, so a warm re-run costs
nothing and a changed photo or text is recomputed.
"""

from __future__ import annotations

import itertools
import logging
from abc import abstractmethod
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from prodcat.features.cache import EmbeddingCache, KeyValueCache, MemoryCache, ReadThroughMemoryCache
from prodcat.parameters import AddedParametersDefaulted
from prodcat.progress import progress_bar

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_V = TypeVar("_V")

_REGISTRY: dict[str, type[Extractor]] = {}


class CacheOwner(Protocol):
    """A class whose outputs are cached in files, :meth:`Extractor.cache_owners` saying which."""

    name: ClassVar[str]
    #: its own version, that of its ONNX export
    version: ClassVar[str]

    @classmethod
    def cache_version(cls) -> str:
        """The version its cached outputs are filed under."""
        ...


class Extractor(AddedParametersDefaulted, TransformerMixin, BaseEstimator):
    """Base class: a named, versioned transformer of catalogue frames (one pickled before its class took a parameter
    unpickles with that parameter's default: :class:`~prodcat.parameters.AddedParametersDefaulted`)."""

    #: registry name, the one a config gives (``features: [{name: tfidf}]``); unique (:func:`register`)
    name: ClassVar[str] = ""
    #: bump when the output for the same input changes (invalidates caches)
    version: ClassVar[str] = "1"
    #: ``"text"`` or ``"image"``: which part of a product it reads
    modality: ClassVar[str] = ""

    @classmethod
    def cache_version(cls) -> str:
        """The version its cached outputs are filed under: :attr:`version`, and that of whatever else
        changes them for the same input (photo readers: the decoder's)."""
        return cls.version

    @classmethod
    def cache_owners(cls) -> dict[str, type[CacheOwner]]:
        """The classes whose files in the prodcat cache it writes, by the stem of those files, after their folder,
        exactly as the code writes them: ``features/<stem>`` for ``features/<stem>-v<cache_version()>.sqlite``,
        ``models/<stem>`` for ``models/<stem>-v<version>[-<side>px].onnx``; a stem ending in ``-*`` stands for every
        stem that begins with what comes before the ``*`` (a model's name and hash follow: one file per model). Each
        owner is itself, or a helper with a cache of its own (OCR's texts), with its :attr:`version` (that of its ONNX
        export) and ``cache_version()`` (that of its cached outputs). None here: a :class:`PretrainedEncoder`'s
        vectors are ``features/<name>``. ``prodcat cache`` tells current files from those of an older prodcat by
        them; a file of a stem no extractor declares is not taken for one of theirs (a plugin's ``minilm_ft`` is not
        ``minilm``'s), and prune keeps it."""
        return {}

    def missing_requirement(self) -> str | None:
        """What this extractor needs that the installation lacks (an optional package), in a sentence saying how to
        install it; ``None``: nothing. Checked before any head is fitted (see
        :func:`~prodcat.evaluate.cv.cross_validation_obstacle`), not when this one is, after the others."""
        return None

    def fit(self, frame: pd.DataFrame, y: Any = None) -> Extractor:
        """Learn what :meth:`transform` needs from the products of ``frame`` (``y`` ignored); nothing here."""
        return self

    @abstractmethod
    def transform(self, frame: pd.DataFrame) -> Any:
        """Return features of shape ``(len(frame), dim)``."""

    def available(self, frame: pd.DataFrame) -> np.ndarray:
        """Boolean mask, shape ``(len(frame),)``: which products have this modality."""
        from prodcat.catalog.schema import modality_mask

        return modality_mask(frame, self.modality)

    def transform_available(self, frame: pd.DataFrame) -> tuple[Any, np.ndarray]:
        """``(transform(frame), available(frame))`` in one pass (extractors that learn
        availability while encoding, like photo decoders, override it to encode once)."""
        return self.transform(frame), self.available(frame)

    def separator_columns(self) -> np.ndarray:
        """The output columns (int indices) that the separator :func:`~prodcat.catalog.schema.product_text` puts
        between a title and its description sets by itself: they say nothing of the product, so a row holding
        values in them alone read nothing of it (see :meth:`~prodcat.models.heads.ModalityHead.features_read`).
        None here; a vocabulary of character n-grams holds the separator's."""
        return np.empty(0, dtype=np.intp)


class NothingToLearn(ValueError):
    """Raised by an extractor's ``fit`` when the training products hold nothing it can learn features from (OCR
    reading no text on any photo: no vocabulary). Its head is trained on its other extractors, or, with none,
    left out for the other heads to answer (:meth:`~prodcat.models.heads.ModalityHead.fit_extractors`)."""


def register(cls: type[Extractor]) -> type[Extractor]:
    """Class decorator: make an extractor constructible by name (its :attr:`~Extractor.name`, a config's).

    Raises ``ValueError`` for a name another class holds (a new extractor named ``tfidf``): whichever was registered
    last replaced the other without a word, in every config naming it, the built-in ones being imported lazily. The
    same class registered again (its module reloaded) replaces itself. Raises it too for a name holding a ``-``, which
    separates the name from the rest of its cache files' names (``<name>-descriptors-v2.sqlite``), so that
    ``prodcat cache`` never takes another extractor's files for its own (a plugin ``minilm-ft``'s for ``minilm``'s)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if "-" in cls.name:
        raise ValueError(
            f"feature extractor name {cls.name!r} holds a '-', which separates the parts of its cache files' names "
            f"({cls.name}-v{cls.version}.sqlite); name it with '_' instead: {cls.name.replace('-', '_')!r}"
        )
    held = _REGISTRY.get(cls.name)
    if held is not None and _qualified_name(held) != _qualified_name(cls):
        raise ValueError(
            f"feature extractor name {cls.name!r} is registered twice: by {_qualified_name(held)} and by "
            f"{_qualified_name(cls)}; give one of them another name"
        )
    _REGISTRY[cls.name] = cls
    return cls


def _qualified_name(cls: type) -> str:
    """``module.QualifiedName`` of ``cls``: what says which class it is, the same when its module is reloaded."""
    return f"{cls.__module__}.{cls.__qualname__}"


def make_extractor(name: str, **params: Any) -> Extractor:
    """Build a registered extractor by name, e.g. ``make_extractor("tfidf_word")`` (one of a plugin: its entry point
    loaded, :func:`find_extractor`)."""
    cls = find_extractor(name)
    if cls is None:
        from prodcat.config import unknown_extractor_text

        raise ValueError(unknown_extractor_text(name, extractor_names()))
    return cls(**params)


#: the entry-point group by which an installed distribution offers extractors of its own, each entry point named as
#: its extractor: ``[project.entry-points."prodcat.extractors"] length = "myext:Length"``
ENTRY_POINT_GROUP = "prodcat.extractors"


class ExtractorPluginError(ValueError):
    """An extractor plugin (an entry point of :data:`ENTRY_POINT_GROUP`) that cannot be used: its module fails to
    import, it is no extractor of its entry point's name, or that name is another extractor's."""


def find_extractor(name: str) -> type[Extractor] | None:
    """The extractor class named ``name``: a built-in one, one registered in this process, or else the one the entry
    point ``name`` of :data:`ENTRY_POINT_GROUP` names, loaded then (and registered); ``None``: none of these.

    Raises :class:`ExtractorPluginError` for an entry point that fails to load or gives no extractor of that name,
    and for one named as an extractor of another module (``tfidf``), as :func:`register` refuses it."""
    _import_builtin_extractors()
    point = _plugin_entry_points().get(name)
    if (held := _REGISTRY.get(name)) is not None:
        if point is not None and held.__module__ != point.module:
            raise ExtractorPluginError(
                f"{_plugin_text(point)} is refused: {name!r} is the name of {_qualified_name(held)}; give the entry "
                "point and its extractor another name"
            )
        return held
    if point is None:
        return None
    try:
        loaded = point.load()
    except Exception as error:  # any failure of the plugin's own import, named with its error
        raise ExtractorPluginError(f"{_plugin_text(point)} cannot be loaded: {type(error).__name__}: {error}") from None
    if not (isinstance(loaded, type) and issubclass(loaded, Extractor) and loaded.name == name):
        raise ExtractorPluginError(
            f"{_plugin_text(point)} gives {loaded!r}, not an extractor (prodcat.features.base.Extractor) named {name!r}"
        )
    try:
        return register(loaded)
    except ValueError as error:
        raise ExtractorPluginError(f"{_plugin_text(point)} is refused: {error}") from None


def extractor_names() -> list[str]:
    """The names :func:`find_extractor` knows, sorted: the registered extractors' and the plugins' (not loaded)."""
    _import_builtin_extractors()
    return sorted({*_REGISTRY, *_plugin_entry_points()})


def _plugin_entry_points() -> dict[str, Any]:
    """The entry points of :data:`ENTRY_POINT_GROUP` of the installed distributions, by name (read each time: one
    installed since is found)."""
    from importlib.metadata import entry_points

    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def _plugin_text(point: Any) -> str:
    """How an entry point is named in a message: ``extractor plugin 'length' (myext:Length, of myext 1.0)``."""
    dist = getattr(point, "dist", None)
    origin = f", of {dist.name} {dist.version}" if dist is not None else ""
    return f"extractor plugin {point.name!r} ({point.value}{origin})"


#: the parameters by which the extractors that learn with randomness take their seed (Word2Vec, the visual-word
#: codebooks)
SEED_PARAMETERS = ("seed", "random_state")


def seeded_extractor(name: str, params: dict[str, Any], seed: int) -> Extractor:
    """:func:`make_extractor` with ``params``, its seed (:data:`SEED_PARAMETERS`) ``seed`` unless ``params`` give it:
    a study's or a model's seed reaches every random step, not only its own."""
    extractor = make_extractor(name, **params)
    settable = extractor.get_params()
    extractor.set_params(**{key: seed for key in SEED_PARAMETERS if key in settable and key not in params})
    return extractor


def registered_extractors() -> dict[str, type[Extractor]]:
    """Every registered extractor class by name, the built-in ones imported first."""
    _import_builtin_extractors()
    return dict(_REGISTRY)


def extractor_parameters() -> frozenset[str]:
    """The parameters some registered extractor declares (those of its constructor, which ``get_params`` returns)."""
    return frozenset(name for cls in registered_extractors().values() for name in cls._get_param_names())


def _import_builtin_extractors() -> None:
    # Imported lazily so that `import prodcat` stays cheap; each module registers itself.
    import importlib

    builtin = (
        *("prodcat.text.features", "prodcat.text.embeddings", "prodcat.text.word2vec"),
        *("prodcat.image.features", "prodcat.image.ocr"),
    )
    for module in builtin:
        importlib.import_module(module)


class PretrainedEncoder(Extractor):
    """An extractor whose vectors come from a frozen model, cached per item.

    Subclasses implement :meth:`items` (what to encode for each product),
    :meth:`item_key` (a content key: a text itself, an image file's bytes hash)
    and :meth:`encode` (a batch of items to an array ``(n, dim)``).
    Products without the modality get a zero vector; use :meth:`available`.
    """

    #: output dimension, known before loading the model
    dim: ClassVar[int] = 0

    @classmethod
    def cache_owners(cls) -> dict[str, type[CacheOwner]]:
        """Its vectors (:meth:`disk_cache`)."""
        return {f"features/{cls.name}": cls}

    def __init__(self, cache_dir: str | None = None, batch_size: int = 64, progress: bool = True):
        self.cache_dir = cache_dir
        self.batch_size = batch_size
        self.progress = progress

    @abstractmethod
    def items(self, frame: pd.DataFrame) -> list[Any]:
        """One item per product (``None`` where the product lacks the modality)."""

    @abstractmethod
    def item_key(self, item: Any) -> str:
        """A stable key of an item's *content*."""

    @abstractmethod
    def encode(self, items: Sequence[Any]) -> np.ndarray:
        """Encode a batch of items to ``float32`` array ``(len(items), dim)``."""

    def cache(self) -> EmbeddingCache | MemoryCache[np.ndarray] | ReadThroughMemoryCache[np.ndarray]:
        """Where vectors are looked up and stored: the on-disk cache, unless
        :meth:`use_memory_cache` switched this instance to a bounded in-memory one."""
        memory = getattr(self, "_model_memory_cache", None)
        return self.disk_cache() if memory is None else memory

    def disk_cache(self) -> EmbeddingCache:
        """The on-disk cache of this extractor's vectors, under :meth:`cache_version` in ``cache_dir``."""
        return EmbeddingCache.for_extractor(self.name, self.cache_version(), self.cache_dir)

    def use_memory_cache(self, max_items: int, read_disk: bool = False) -> None:
        """Keep at most ``max_items`` recent vectors in memory instead of writing them to the on-disk cache.

        For a server: repeated products stay cheap, and the disk does not grow with
        every new photo a client sends. With ``read_disk``, vectors already on disk are still read from it
        (the web app: catalogue products were cached by training or ``prodcat predict``). Not pickled
        (a loaded bundle uses the disk cache).
        """
        memory = MemoryCache[np.ndarray](max_items)
        self._model_memory_cache = ReadThroughMemoryCache(self.disk_cache, memory) if read_disk else memory

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """``float32`` ``(len(frame), dim)``: :meth:`encode_items` of the products' :meth:`items`."""
        return self.encode_items(self.items(frame))

    def dimension(self) -> int | Callable[[], int]:
        """:attr:`dim`; or, for an encoder whose dimension is read from its model (which that loads), a function
        returning it, called only when some item is not cached (:func:`encode_with_cache`)."""
        return self.dim

    def encode_items(self, items: list[Any]) -> np.ndarray:
        """Vectors ``(len(items), dim)`` of :meth:`items`' output: cached ones read, the others
        encoded and stored; zero rows for ``None``."""
        return encode_with_cache(
            items,
            self.item_key,
            self.encode,
            self.cache(),
            self.dimension(),
            batch_size=self.batch_size,
            progress=self.progress,
            desc=self.name,
        )

    def __getstate__(self) -> dict[str, Any]:
        # Loaded models (ONNX sessions, encoders) are rebuilt on demand, never pickled.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_model")}


@dataclass
class EncodingTally:
    """The items :func:`values_with_cache` was asked for within :func:`encodings_counted`, by extractor: each
    ``(extractor, item key)`` once, however many calls asked for it (cv's folds read the same products again)."""

    #: found in the cache when asked for
    read: set[tuple[str, str]] = field(default_factory=set)
    #: encoded, or otherwise computed (a photo's text read, its descriptors detected): missing from the cache, or
    #: unusable there
    encoded: set[tuple[str, str]] = field(default_factory=set)

    @property
    def n_encoded(self) -> int:
        """The items encoded."""
        return len(self.encoded)

    @property
    def n_cached(self) -> int:
        """The items read from the cache that were there before (not encoded within)."""
        return len(self.read - self.encoded)


_ENCODING_TALLY: ContextVar[EncodingTally | None] = ContextVar("_ENCODING_TALLY", default=None)


@contextmanager
def encodings_counted() -> Iterator[EncodingTally]:
    """Within it, the items :func:`values_with_cache` reads from its cache or computes are counted in the tally
    yielded: whether a run's features cost their encoding or came from the cache."""
    tally = EncodingTally()
    token = _ENCODING_TALLY.set(tally)
    try:
        yield tally
    finally:
        _ENCODING_TALLY.reset(token)


def _count_encodings(desc: str, read: Iterable[str], encoded: Iterable[str]) -> None:
    """Count in :func:`encodings_counted`'s tally, if any, the item keys of extractor ``desc`` ``read`` from the cache
    and ``encoded``."""
    if (tally := _ENCODING_TALLY.get()) is not None:
        tally.read.update((desc, k) for k in read)
        tally.encoded.update((desc, k) for k in encoded)


def encode_with_cache(
    items: list[Any],
    key: Callable[[Any], str],
    encode: Callable[[Sequence[Any]], np.ndarray],
    cache: KeyValueCache[np.ndarray],
    dim: int | Callable[[], int],
    *,
    batch_size: int = 64,
    progress: bool = True,
    desc: str = "encode",
) -> np.ndarray:
    """Vectors for ``items``: cached ones read, missing ones encoded and stored (:func:`values_with_cache`).

    ``None`` items get a zero vector. Returns ``float32`` ``(len(items), dim)``. A callable ``dim`` (one that loads a
    model to read it) is called only when some item is not cached or the cached vectors differ in size: otherwise
    their size is the dimension, the cache being kept apart per model and version.
    """
    keys = [None if it is None else key(it) for it in items]
    wanted = by_key(keys, items)
    if not wanted:  # e.g. a text-only request to a text + photo model: no cache to open
        return np.zeros((len(items), dim() if callable(dim) else dim), dtype=np.float32)
    width = 0 if callable(dim) else dim

    def of_width(cached: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        nonlocal width
        if callable(dim):
            sizes = {vector.size for vector in cached.values()}
            width = sizes.pop() if len(cached) == len(wanted) and len(sizes) == 1 else dim()
        return _of_size(cached, width, desc)

    def encoded(todo: list[Any]) -> Iterator[np.ndarray]:
        for start in range(0, len(todo), batch_size):
            yield from np.asarray(encode(todo[start : start + batch_size]), dtype=np.float32)

    found = values_with_cache(
        wanted, encoded, cache, desc=desc, store_every=batch_size, usable=of_width, progress=progress
    )
    out = np.zeros((len(items), width), dtype=np.float32)
    for i, k in enumerate(keys):
        if k is not None:
            out[i] = found[k]
    return out


def by_key(keys: Sequence[str | None], items: Sequence[_T | None], skip: Container[str] = ()) -> dict[str, _T]:
    """The first item of each key, in order: what :func:`values_with_cache` is asked for. The items whose key is
    ``None`` (nothing to compute: no photo) or in ``skip`` are left out."""
    first: dict[str, _T] = {}
    for k, it in zip(keys, items, strict=True):
        if k is not None and it is not None and k not in skip:
            first.setdefault(k, it)
    return first


def values_with_cache(
    items: Mapping[str, Any],
    compute: Callable[[list[Any]], Iterable[_V | None]],
    cache: KeyValueCache[_V],
    *,
    desc: str,
    store_every: int = 64,
    usable: Callable[[dict[str, _V]], dict[str, _V]] | None = None,
    progress: bool = True,
    unit: str = "item",
) -> dict[str, _V]:
    """The value of each of ``items``' keys (key -> item): the ones ``cache`` holds read (those ``usable`` keeps, when
    given: a damaged entry is computed again and overwritten), the others computed and stored.

    ``compute`` is called once, with the missing items in order, and its values are taken as they come (a thread
    pool's ``map`` computes them concurrently), stored ``store_every`` at a time: an interrupted run keeps what it
    computed. A value computed as ``None`` (a photo that does not decode) is neither stored nor returned, so a later
    call computes it again. The items read and computed are counted in :func:`encodings_counted`'s tally, under
    ``desc``, which names the progress bar too. The path of every cached extractor's items: vectors
    (:func:`encode_with_cache`), a photo's text (:class:`~prodcat.image.ocr.PhotoText`) or its local descriptors
    (:class:`~prodcat.image.features.BagOfVisualWords`).
    """
    found = cache.get_many(items)
    if usable is not None:
        found = usable(found)
    missing = {k: it for k, it in items.items() if k not in found}
    computed = zip(missing, compute(list(missing.values())), strict=True)
    with progress_bar(total=len(missing), desc=desc, disable=not progress or not missing, unit=unit) as bar:
        while chunk := list(itertools.islice(computed, store_every)):
            values = {k: value for k, value in chunk if value is not None}
            cache.put_many(values)
            found.update(values)
            bar.update(len(chunk))
    _count_encodings(desc, found.keys() - missing.keys(), missing)
    return found


def _of_size(found: dict[str, np.ndarray], dim: int, desc: str) -> dict[str, np.ndarray]:
    """The cached vectors of ``dim`` values; others (a damaged entry, a cache another version wrote under the
    same name) are left out, so they are encoded again and overwritten rather than failing the whole batch."""
    kept = {k: v for k, v in found.items() if v.size == dim}
    if len(kept) < len(found):
        log.warning("%s: %d cached vectors are not of %d values; encoded again", desc, len(found) - len(kept), dim)
    return kept
