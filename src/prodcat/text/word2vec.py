"""Word2Vec document vectors learned on the catalogue itself.

``fit`` trains a gensim Word2Vec on the catalogue's normalised tokens
(:class:`~prodcat.text.clean.TextNormalizer`: cleaned, lower case, stop-words
removed unless ``remove_stop_words=False``, lemmatised if ``lemmatize=True``); a product's
vector is the mean of its words' vectors, optionally weighted by each word's inverse document frequency so that
rare, specific words count more than ubiquitous ones.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from prodcat.catalog.schema import product_text
from prodcat.features.base import Extractor, NothingToLearn, register
from prodcat.text.clean import TextNormalizer


@register
class Word2VecExtractor(Extractor):
    """Mean (optionally IDF-weighted) Word2Vec vector per product, ``float32`` ``(n, vector_size)``.

    Rows are L2-normalised; products with no known word get a zero row.
    Training is seeded and, with one worker thread (the default), bit-reproducible: the same ``seed`` gives the
    same vectors, run after run. ``workers > 1`` trains faster on many cores, but gensim's threads then update the
    vectors in whatever order they are scheduled, and each run's differ.
    """

    name = "word2vec"
    modality = "text"

    def __init__(
        self,
        vector_size: int = 100,
        window: int = 5,
        min_count: int = 2,
        epochs: int = 10,
        skip_gram: bool = False,
        idf_weighted: bool = True,
        lemmatize: bool = False,
        remove_stop_words: bool = True,
        seed: int = 0,
        # one thread: training Flipkart's 900 products took 3.2 s with one or two (2 shared cores), Rakuten's 3,490
        # 6.0 s against 5.1, and a seeded study gives the same report each time
        workers: int = 1,
    ):
        self.vector_size = vector_size
        self.window = window
        self.min_count = min_count
        self.epochs = epochs
        self.skip_gram = skip_gram
        self.idf_weighted = idf_weighted
        self.lemmatize = lemmatize
        self.remove_stop_words = remove_stop_words
        self.seed = seed
        self.workers = workers

    def tokens(self, frame: pd.DataFrame) -> list[list[str]]:
        """Normalised tokens of each product's title + description, each read in its language as found in light of
        the training catalogue's languages (those of ``frame`` itself before ``fit``)."""
        normalizer = getattr(self, "normalizer_", None) or self._normalizer()
        return [text.split() for text in normalizer.transform(product_text(frame))]

    def _normalizer(self) -> TextNormalizer:
        return TextNormalizer(lemmatize=self.lemmatize, remove_stop_words=self.remove_stop_words)

    def fit(self, frame: pd.DataFrame, y: Any = None) -> Word2VecExtractor:
        from gensim.models import Word2Vec

        self.normalizer_ = self._normalizer().fit(product_text(frame))
        docs = self.tokens(frame)
        counts = Counter(word for doc in docs for word in doc)
        if not counts or max(counts.values()) < self.min_count:
            # gensim's 'you must first build vocabulary before training the model' traceback, after the heads before
            raise NothingToLearn(
                f"{self.name}: no word is in the training texts min_count={self.min_count} times or more (the most "
                f"frequent: {max(counts.values(), default=0)} times), no vocabulary to learn vectors of"
            )
        model = Word2Vec(
            sentences=docs,
            vector_size=self.vector_size,
            window=self.window,
            min_count=self.min_count,
            epochs=self.epochs,
            sg=int(self.skip_gram),
            seed=self.seed,
            workers=self.workers,
        )
        self.vectors_ = model.wv
        # Smoothed IDF, as scikit-learn's TfidfVectorizer: log((1 + n) / (1 + df)) + 1.
        doc_freq: dict[str, int] = {}
        for doc in docs:
            for word in set(doc):
                doc_freq[word] = doc_freq.get(word, 0) + 1
        n_docs = len(docs)
        self.idf_ = {
            word: float(np.log((1 + n_docs) / (1 + doc_freq.get(word, 0))) + 1) for word in self.vectors_.index_to_key
        }
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(frame), self.vector_size), dtype=np.float32)
        for row, doc in enumerate(self.tokens(frame)):
            known = [w for w in doc if w in self.idf_]
            if not known:
                continue
            weights = np.array([self.idf_[w] if self.idf_weighted else 1.0 for w in known], dtype=np.float32)
            vector = weights @ self.vectors_[known] / weights.sum()
            norm = np.linalg.norm(vector)
            if norm > 0:
                out[row] = vector / norm
        return out
