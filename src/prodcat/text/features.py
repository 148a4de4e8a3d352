"""Sparse text extractors: word and character TF-IDF, raw counts, and the listing's layout.

The bag-of-words ones read :func:`prodcat.catalog.schema.product_text` (title + description),
cleaned by :func:`prodcat.text.clean.clean_text` (``tfidf``'s title blocks read the title alone); the word
extractors can also lemmatise and drop stop-words (:class:`~prodcat.text.clean.TextNormalizer`).
``layout`` reads the title and the description apart (:class:`LayoutExtractor`).
Outputs are ``scipy.sparse`` CSR matrices ``(n_products, n_features)`` of
``float32`` (``int64`` counts for ``bow``).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from prodcat.catalog.schema import TEXT_SEPARATOR, product_text, product_titles, strings_or_empty
from prodcat.features.base import Extractor, register
from prodcat.text.clean import TextNormalizer, clean_texts, has_markup, word_pattern

log = logging.getLogger(__name__)

#: scikit-learn's analysers and accent stripping, as annotations: a config's other value (``char_analyzer: words``) is
#: refused when the config is read (:func:`prodcat.config.extractor_problems`), not by scikit-learn's traceback when
#: the head is fitted, after the heads before it
Analyzer = Literal["char_wb", "char", "word"]
StripAccents = Literal["ascii", "unicode"] | None


class _VectorizerExtractor(Extractor):
    """Shared plumbing: frame -> (cleaned, optionally normalised) texts -> sklearn vectorizer.

    ``transform`` gives a CSR matrix ``(n_products, vocabulary size)``, one row per product, one column per term of
    the vocabulary ``fit`` learnt (:meth:`get_feature_names_out`).
    """

    modality = "text"

    #: set by subclasses: does this extractor offer lemmas/stop-words?
    _normalizes: bool = False

    def normalise(self, cleaned: list[str]) -> list[str]:
        """Cleaned texts to what the vectorizer sees (lemmas, no stop-words, if asked), each product read in its
        language as found in light of the training catalogue's languages (those of ``cleaned`` itself before
        ``fit``), so that a product scored alone reads as it would among the products it was trained with."""
        if not self._uses_normalizer():
            return cleaned
        # unfitted, the normalizer takes the texts transformed together for the catalogue
        return (getattr(self, "normalizer_", None) or self._normalizer()).transform(cleaned)

    def _uses_normalizer(self) -> bool:
        return self._normalizes and (self.lemmatize or self.remove_stop_words)

    def _normalizer(self) -> TextNormalizer:
        return TextNormalizer(
            clean=False, lemmatize=self.lemmatize, remove_stop_words=self.remove_stop_words, language=self.language
        )

    def _vectorizer(self) -> Any:
        raise NotImplementedError

    def fit(self, frame: pd.DataFrame, y: Any = None) -> _VectorizerExtractor:
        self.fit_transform_cleaned(clean_texts(product_text(frame)))
        return self

    def fit_transform(self, frame: pd.DataFrame, y: Any = None, **fit_params: Any) -> sp.csr_matrix:
        return self.fit_transform_cleaned(clean_texts(product_text(frame)))

    def transform(self, frame: pd.DataFrame) -> sp.csr_matrix:
        return self.transform_cleaned(clean_texts(product_text(frame)))

    def fit_transform_cleaned(self, cleaned: list[str]) -> sp.csr_matrix:
        """:meth:`fit_transform` from already cleaned texts, in one pass over them: ``(len(cleaned), vocabulary
        size)`` CSR."""
        self.__dict__.pop("_separator_columns", None)  # those of the vocabulary being replaced
        if self._uses_normalizer():
            self.normalizer_ = self._normalizer().fit(cleaned)
        self.vectorizer_ = self._vectorizer()
        texts = self.normalise(cleaned)
        try:
            return self.vectorizer_.fit_transform(texts).tocsr()
        except ValueError as error:  # "After pruning, no terms remain" (texts of no term at all fail below again)
            # every term in nearly every text, or in a single one (a tiny or repetitive catalogue): they are all there
            # is to read, and training on them beats a traceback
            self.vectorizer_.set_params(min_df=1, max_df=1.0)
            matrix = self.vectorizer_.fit_transform(texts).tocsr()
            log.info("%s: %s; every term is kept", self.name, error)  # said once true: not before a refusal
            return matrix

    def transform_cleaned(self, cleaned: list[str]) -> sp.csr_matrix:
        """:meth:`transform` from already cleaned texts: ``(len(cleaned), vocabulary size)`` CSR."""
        return self.vectorizer_.transform(self.normalise(cleaned)).tocsr()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.vectorizer_.get_feature_names_out()

    def separator_columns(self) -> np.ndarray:
        # the separator as it stands between two words of the cleaned text (cleaning keeps it), so that a character
        # analyser sees the n-gram " . " it makes in every text with a description; worked out once per vocabulary,
        # as every prediction asks (0.8 ms a call for the default TF-IDF head)
        if (columns := vars(self).get("_separator_columns")) is None:
            columns = self._separator_columns = np.unique(self.transform_cleaned([TEXT_SEPARATOR]).indices)
        return columns

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if "vectorizer_" in state:
            # scikit-learn keeps in a vectoriser the address (id()) of the stop-word list it checked, another in
            # every process: pickled, two identical trainings wrote different bytes (bundle versions). Without it,
            # the vectoriser checks its stop words again when it is next used (it has none: the normalizer drops them)
            vectorizer = copy.copy(state["vectorizer_"])
            vars(vectorizer).pop("_stop_words_id", None)
            state["vectorizer_"] = vectorizer
        return state


@register
class TfidfWordExtractor(_VectorizerExtractor):
    """Word n-gram TF-IDF, shape ``(n, vocabulary size)``, float32 sparse, rows L2-normalised.

    ``lemmatize``/``remove_stop_words`` apply :class:`TextNormalizer` first
    (lemmas and stop-words in each product's detected language, or in ``language``).
    """

    name = "tfidf_word"
    _normalizes = True

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int | float = 2,
        max_df: float = 0.9,
        sublinear_tf: bool = True,
        strip_accents: StripAccents = "unicode",
        max_features: int | None = None,
        lemmatize: bool = False,
        remove_stop_words: bool = False,
        language: str = "auto",
    ):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.strip_accents = strip_accents
        self.max_features = max_features
        self.lemmatize = lemmatize
        self.remove_stop_words = remove_stop_words
        self.language = language

    def _vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            max_df=self.max_df,
            sublinear_tf=self.sublinear_tf,
            strip_accents=self.strip_accents,
            max_features=self.max_features,
            token_pattern=word_pattern(2),
            dtype=np.float32,
        )


@register
class TfidfCharExtractor(_VectorizerExtractor):
    """Character n-gram TF-IDF (within word boundaries by default), shape ``(n, vocabulary size)``, float32 sparse,
    rows L2-normalised.

    Robust to typos, plurals and unseen compounds; works on cleaned text
    without lemmatisation (the n-grams already share stems).
    """

    name = "tfidf_char"

    def __init__(
        self,
        ngram_range: tuple[int, int] = (3, 5),
        analyzer: Analyzer = "char_wb",
        min_df: int | float = 2,
        max_df: float = 1.0,
        sublinear_tf: bool = True,
        strip_accents: StripAccents = None,
        max_features: int | None = None,
    ):
        self.ngram_range = ngram_range
        self.analyzer = analyzer
        self.min_df = min_df
        self.max_df = max_df
        self.sublinear_tf = sublinear_tf
        self.strip_accents = strip_accents
        self.max_features = max_features

    def _vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer=self.analyzer,
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            max_df=self.max_df,
            sublinear_tf=self.sublinear_tf,
            strip_accents=self.strip_accents,
            max_features=self.max_features,
            dtype=np.float32,
        )


@register
class BowExtractor(_VectorizerExtractor):
    """Bag of words: raw word n-gram counts, shape ``(n, vocabulary size)``, int64 sparse."""

    name = "bow"
    _normalizes = True

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 1),
        min_df: int | float = 2,
        max_df: float = 0.9,
        max_features: int | None = None,
        binary: bool = False,
        lemmatize: bool = True,
        remove_stop_words: bool = True,
        language: str = "auto",
    ):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features
        self.binary = binary
        self.lemmatize = lemmatize
        self.remove_stop_words = remove_stop_words
        self.language = language

    def _vectorizer(self) -> CountVectorizer:
        return CountVectorizer(
            ngram_range=tuple(self.ngram_range),
            min_df=self.min_df,
            max_df=self.max_df,
            max_features=self.max_features,
            binary=self.binary,
            token_pattern=word_pattern(2),
        )


@register
class TfidfExtractor(Extractor):
    """Word TF-IDF and character TF-IDF side by side: ``hstack([word, char_weight * char])``.

    Parameters are those of :class:`TfidfWordExtractor` (``word_*`` and the
    shared ``lemmatize``/``remove_stop_words``) and :class:`TfidfCharExtractor`
    (``char_*``); ``char_weight`` scales the character block against the word
    block (each block's rows are L2-normalised). ``max_chars`` keeps only the start of each
    cleaned text (title first): the analysers' cost grows with the text, the signal much less.
    ``title_weight > 0`` appends word and character blocks of the title alone, scaled by it: the
    same word then counts more in the title than in the description, which a seller's title
    deserves (Rakuten weighted F1 +0.4 to +0.6 point on three fold seeds, neutral on Flipkart and
    fashion; ``benchmarks/results/fusion.md``); it is left out when the titles have no terms to count (a
    catalogue of descriptions only). Output float32 CSR ``(n, word vocabulary + char vocabulary)``, then the title
    blocks' vocabularies; the columns are named by :meth:`get_feature_names_out`.
    """

    name = "tfidf"
    modality = "text"

    def __init__(
        self,
        word_ngram_range: tuple[int, int] = (1, 2),
        word_min_df: int | float = 2,
        word_max_df: float = 0.9,
        char_ngram_range: tuple[int, int] = (3, 5),
        char_analyzer: Analyzer = "char_wb",
        char_min_df: int | float = 2,
        char_weight: float = 1.0,
        sublinear_tf: bool = True,
        lemmatize: bool = False,
        remove_stop_words: bool = False,
        language: str = "auto",
        max_chars: int | None = None,
        title_weight: float = 0.0,
    ):
        self.word_ngram_range = word_ngram_range
        self.word_min_df = word_min_df
        self.word_max_df = word_max_df
        self.char_ngram_range = char_ngram_range
        self.char_analyzer = char_analyzer
        self.char_min_df = char_min_df
        self.char_weight = char_weight
        self.sublinear_tf = sublinear_tf
        self.lemmatize = lemmatize
        self.remove_stop_words = remove_stop_words
        self.language = language
        self.max_chars = max_chars
        self.title_weight = title_weight

    def _blocks(self) -> tuple[TfidfWordExtractor, TfidfCharExtractor]:
        word = TfidfWordExtractor(
            ngram_range=self.word_ngram_range,
            min_df=self.word_min_df,
            max_df=self.word_max_df,
            sublinear_tf=self.sublinear_tf,
            lemmatize=self.lemmatize,
            remove_stop_words=self.remove_stop_words,
            language=self.language,
        )
        char = TfidfCharExtractor(
            ngram_range=self.char_ngram_range,
            analyzer=self.char_analyzer,
            min_df=self.char_min_df,
            sublinear_tf=self.sublinear_tf,
        )
        return word, char

    def fit(self, frame: pd.DataFrame, y: Any = None) -> TfidfExtractor:
        self.fit_transform(frame)
        return self

    def fit_transform(self, frame: pd.DataFrame, y: Any = None, **fit_params: Any) -> sp.csr_matrix:
        self.word_, self.char_ = self._blocks()
        cleaned = self._cleaned(frame)  # once for both blocks
        parts = [self.word_.fit_transform_cleaned(cleaned), self.char_.fit_transform_cleaned(cleaned)]
        self.title_word_ = self.title_char_ = None
        if self.title_weight:
            titles = self._cleaned_titles(frame)
            word, char = self._blocks()
            try:
                title_parts = [word.fit_transform_cleaned(titles), char.fit_transform_cleaned(titles)]
            except ValueError as error:  # a catalogue without titles (descriptions only): nothing to weigh again
                log.info("TF-IDF title block left out: the titles have no terms to count (%s)", error)
            else:
                self.title_word_, self.title_char_ = word, char
                parts += title_parts
        return self._stack(parts)

    def transform(self, frame: pd.DataFrame) -> sp.csr_matrix:
        cleaned = self._cleaned(frame)
        parts = [self.word_.transform_cleaned(cleaned), self.char_.transform_cleaned(cleaned)]
        if blocks := self._title_blocks():
            titles = self._cleaned_titles(frame)
            parts += [block.transform_cleaned(titles) for block in blocks]
        return self._stack(parts)

    def _title_blocks(self) -> tuple[TfidfWordExtractor, TfidfCharExtractor] | None:
        """The title's word and char blocks, fitted together; ``None`` without them."""
        # getattr: an extractor fitted with title_weight 0 before the attribute was always set
        word, char = getattr(self, "title_word_", None), getattr(self, "title_char_", None)
        return None if word is None or char is None else (word, char)

    def _cleaned(self, frame: pd.DataFrame) -> list[str]:
        cleaned = clean_texts(product_text(frame))
        return cleaned if self.max_chars is None else [text[: self.max_chars] for text in cleaned]

    @staticmethod
    def _cleaned_titles(frame: pd.DataFrame) -> list[str]:
        return clean_texts(product_titles(frame))

    def _stack(self, parts: list[sp.spmatrix]) -> sp.csr_matrix:
        """``[word, char_weight * char]``, then ``title_weight * [title word, char_weight * title char]``."""
        weights = [1.0, self.char_weight, self.title_weight, self.title_weight * self.char_weight][: len(parts)]
        return sp.hstack(
            [part * np.float32(w) for part, w in zip(parts, weights, strict=True)], format="csr", dtype=np.float32
        )

    def separator_columns(self) -> np.ndarray:
        # the title blocks read the title alone, without separator
        n_word = len(self.word_.vectorizer_.vocabulary_)
        return np.concatenate([self.word_.separator_columns(), n_word + self.char_.separator_columns()])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        blocks = [("word:", self.word_), ("char:", self.char_)]
        if title_blocks := self._title_blocks():
            blocks += [("title word:", title_blocks[0]), ("title char:", title_blocks[1])]
        return np.concatenate([prefix + block.get_feature_names_out().astype(object) for prefix, block in blocks])


@register
class LayoutExtractor(Extractor):
    """How a listing is written rather than what it says, as one-hot buckets scaled by ``weight``.

    Columns (see :meth:`get_feature_names_out`): the description's length in characters
    (none, then buckets from :attr:`DESCRIPTION_CHARS`), the title's length in words (buckets from
    :attr:`TITLE_WORDS`), and three flags: markup in the description (tags or HTML entities), a
    title mostly in capitals, digits in the title. The title is read cleaned
    (:func:`~prodcat.text.clean.clean_text`): the digits of ``&#39;`` or the letters of ``<SPAN>`` are
    not the seller's. Sellers of one category tend to write alike,
    and the words alone cannot see an *absent* description: on Rakuten, 87% of the listings of one
    book category (code 10) have none, 71% of another's (2705) have one. Shape ``(n, 15)``, float32 CSR.
    """

    name = "layout"
    modality = "text"
    #: lower bounds of the description-length buckets, in characters of the raw description
    DESCRIPTION_CHARS = (1, 100, 300, 1000, 3000)
    #: lower bounds of the title-length buckets, in words
    TITLE_WORDS = (1, 4, 8, 13, 21)

    def __init__(self, weight: float = 0.3):
        self.weight = weight

    def transform(self, frame: pd.DataFrame) -> sp.csr_matrix:
        titles = clean_texts(product_titles(frame))
        descriptions = strings_or_empty(frame["description"].tolist())
        description_bucket = np.digitize([len(d.strip()) for d in descriptions], self.DESCRIPTION_CHARS)
        title_bucket = np.digitize([len(t.split()) for t in titles], self.TITLE_WORDS)
        flags = np.array(
            [
                [has_markup(d), _mostly_capitals(t), any(c.isdigit() for c in t)]
                for t, d in zip(titles, descriptions, strict=True)
            ],
            dtype=np.float32,
        ).reshape(len(titles), 3)
        n_description, n_title = len(self.DESCRIPTION_CHARS) + 1, len(self.TITLE_WORDS) + 1
        onehot = np.zeros((len(titles), n_description + n_title), dtype=np.float32)
        rows = np.arange(len(titles))
        onehot[rows, description_bucket] = 1.0
        onehot[rows, n_description + title_bucket] = 1.0
        return sp.csr_matrix(np.hstack([onehot, flags]) * np.float32(self.weight))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        description = ["description: none"] + [f"description: {low}+ chars" for low in self.DESCRIPTION_CHARS]
        title = ["title: no words"] + [f"title: {low}+ words" for low in self.TITLE_WORDS]
        flags = ["description: markup", "title: mostly capitals", "title: digits"]
        return np.asarray(description + title + flags, dtype=object)


def _mostly_capitals(text: str, share: float = 0.6, min_letters: int = 4) -> bool:
    """Whether most of the letters of ``text`` (at least ``min_letters`` of them) are capitals."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= min_letters and sum(c.isupper() for c in letters) >= share * len(letters)
