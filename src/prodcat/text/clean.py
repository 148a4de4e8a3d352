"""Text cleaning, language detection and token normalisation.

Two layers, used by every text feature:

* :func:`clean_text` turns a raw marketplace string into plain readable text:
  HTML entities (also double-escaped ones such as ``&amp;eacute;``), tags,
  comments, CDATA markers, mojibake (``Ã©`` for ``é``, stray Windows-1252 bytes), Unicode normalisation
  and whitespace. Case and accents are kept: sentence encoders use them.
* :class:`TextNormalizer` turns clean text into a normalised token string for
  bag-of-words models: lower case, optional accent stripping, stop-words (function words) removed and words
  lemmatised in each product's own language (:func:`catalogue_languages`: detected per product with
  :func:`detect_language`, in light of the languages of its catalogue, :func:`language_prior`).
"""

from __future__ import annotations

import copy
import html
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import cache, lru_cache
from typing import Any, Literal

import ftfy
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from prodcat.parameters import AddedParametersDefaulted
from prodcat.progress import progress_bar

#: the languages found in the catalogues; detection is restricted to them
LANGUAGES: tuple[str, ...] = ("fr", "en", "de", "es", "it")
#: returned by :func:`detect_language` for a text with no letters
UNDETERMINED = "und"

# The patterns below are written so that no run of characters can be split two ways (one optional
# "/" between two \s*, a lazy .*? that rescans the rest of the text from every opening tag): those
# made cleaning quadratic, minutes for a field of "<" followed by spaces or of repeated "<script>".
# Blocks whose *content* is not product text; the content stops at the next script/style tag.
_HIDDEN_BLOCK = re.compile(
    r"<\s*(script|style)\b[^<>]*>(?:(?!<\s*(?:/\s*)?(?:script|style)\b).)*<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL
)
#: an HTML tag, as the cleaner removes it, the audit counts it and the ``layout`` extractor flags it. Only things
#: that look like tags: a name right after "<", "</" or "<!", as browsers read them ("a < 5" stays); closing tags
#: spaced around their "/", Rakuten's "</ span>" and "< /span>" (never text to a browser either); and
#: "< span style=...>", "< p >", whose name must close the tag or be followed by a quoted attribute, so that
#: "Poids < ou égal à 2 kg. Âge > 3 ans" stays text.
HTML_TAG = re.compile(
    r"<(?:[/!]?|\s*/\s*|\s+(?=[a-zA-Z][\w:-]*(?:\s*(?:/\s*)?>|\s+[\w:-]+\s*=\s*[\"'])))[a-zA-Z][^<>]*>"
)
# Markers of marked sections that hold text: CDATA (XML feeds wrap descriptions in it) and the conditionals of
# HTML pasted from Word (``<![if !supportLists]>·<![endif]>``). The markers go, their text stays.
_SECTION_MARKER = re.compile(r"<!\[(?:CDATA\[|(?:end)?if\b[^<>]*\]>)|\]\]>", re.IGNORECASE)
# Control characters as spreadsheet exports escape them ("_x000D_" for a carriage return in an XLSX cell).
_ESCAPED_CONTROL = re.compile(r"_x00[01][0-9A-Fa-f]_")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
# Invisible characters that sit *inside* words (zero-width space and joiners, word joiner, byte-order
# mark, soft hyphen, direction marks): removed, not spaced, so that "co\u200bton" stays "coton".
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u2060\ufeff]")
_SPACES = re.compile(r"\s+")
# Entities broken by a space after "&" ("&amp; nbsp;" -> "& nbsp;"), found in Rakuten descriptions.
_SPACED_ENTITY = re.compile(r"&\s+([A-Za-z]{2,8}|#[0-9]{2,5});")
#: an HTML entity (named, decimal or hexadecimal) in raw text
HTML_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")


@cache
def word_pattern(min_chars: int = 1) -> str:
    """A word of at least ``min_chars`` characters, as a regular expression: letters, digits and the combining
    marks among them (:func:`word_characters`). On text without such marks it finds what ``\\w+`` finds
    (scikit-learn's ``\\b\\w\\w+\\b`` with ``min_chars=2``)."""
    return rf"{word_characters()}{{{min_chars},}}"


@cache
def word_characters() -> str:
    """The characters of a word, as a regular-expression class: letters, digits and combining marks. ``\\w`` alone
    leaves out the marks that no precomposed letter absorbs, which cut Hindi "हिन्दी" into "ह", "न", "द", vocalised
    Arabic, Thai and lower-cased Turkish "İ" (an "i" and a combining dot) likewise. Built once, on first use (a
    third of a second)."""
    marks, start = [], None
    for code in range(sys.maxunicode + 2):
        is_mark = code <= sys.maxunicode and unicodedata.category(chr(code)).startswith("M")
        if is_mark and start is None:
            start = code
        elif not is_mark and start is not None:
            marks.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
            start = None
    return rf"[\w{''.join(marks)}]"


@cache
def _word() -> re.Pattern[str]:
    return re.compile(word_pattern())


def has_markup(text: str) -> bool:
    """Whether raw ``text`` holds an HTML tag or entity (:data:`HTML_TAG`, :data:`HTML_ENTITY`)."""
    return bool(HTML_TAG.search(text) or HTML_ENTITY.search(text))


def unescape_html(text: str, max_rounds: int = 3) -> str:
    """Decode HTML entities until stable: ``&amp;eacute;`` -> ``&eacute;`` -> ``é``.

    Rakuten descriptions were escaped up to twice, hence the rounds.
    """
    for _ in range(max_rounds):
        decoded = html.unescape(_SPACED_ENTITY.sub(_join_entity, text))
        if decoded == text:
            break
        text = decoded
    return text


def _join_entity(match: re.Match[str]) -> str:
    entity = f"&{match.group(1).lower()};"
    return entity if html.unescape(entity) != entity else match.group(0)


def strip_tags(text: str) -> str:
    """Replace HTML tags by spaces (so ``a<br/>b`` stays two words), drop comments and script/style blocks, and
    unwrap CDATA sections."""
    return HTML_TAG.sub(" ", _SECTION_MARKER.sub(" ", _HIDDEN_BLOCK.sub(" ", _drop_comments(text))))


def _drop_comments(text: str) -> str:
    """``text`` without its ``<!-- ... -->`` comments (Word's ``<!--[if gte mso 9]><xml>...`` styles among them).
    An unclosed ``<!--`` is left: its text may be the product's. A scan rather than a lazy pattern, which would
    rescan the rest of the text from each of many unclosed ``<!--``."""
    parts, position = [], 0
    while (start := text.find("<!--", position)) != -1:
        end = text.find("-->", start + 4)
        if end == -1:  # no comment closes after this one, nor after any later opener
            break
        parts += [text[position:start], " "]
        position = end + 3
    return "".join(parts) + text[position:]


def clean_text(raw: str | None) -> str:
    """Plain, readable text from a raw product field.

    Decodes HTML entities (repeatedly), removes tags and comments, repairs mojibake with
    ftfy, normalises Unicode to NFC, removes invisible characters (zero-width,
    soft hyphen), turns control characters (also escaped as ``_x000D_``) into spaces and collapses
    whitespace. ``None``/NaN give ``""``. Case and accents are kept.
    """
    if raw is None or not isinstance(raw, str):
        return ""
    text = strip_tags(unescape_html(raw))
    # Entities may hide behind tags (``&lt;br /&gt;``) and tags behind entities: one more pass.
    text = strip_tags(unescape_html(text))
    text = ftfy.fix_text(text, unescape_html=False, normalization="NFC")
    text = _CONTROL.sub(" ", without_invisible(_ESCAPED_CONTROL.sub(" ", text)))
    return _SPACES.sub(" ", text).strip()


def without_invisible(text: str) -> str:
    """``text`` without the invisible characters that sit inside words (zero-width space and joiners, word joiner,
    byte-order mark, soft hyphen, direction marks): "co\u200bton" is "coton", in a text as in a category name."""
    return _INVISIBLE.sub("", text)


#: texts up to this long are cached by :func:`clean_texts`; longer ones are cleaned each time, so that the
#: cache of a long-running server holds at most CLEAN_CACHE_ITEMS x this many characters (and their copies)
CACHED_TEXT_CHARS = 10_000
CLEAN_CACHE_ITEMS = 20_000


def clean_texts(raws: Iterable[str | None]) -> list[str]:
    """:func:`clean_text` over many texts, each distinct text (of at most :data:`CACHED_TEXT_CHARS`) cleaned once."""
    return [_clean_one(raw) for raw in raws]


def _clean_one(raw: str | None) -> str:
    if not isinstance(raw, str):
        return ""
    return _clean_cached(raw) if len(raw) <= CACHED_TEXT_CHARS else clean_text(raw)


@lru_cache(maxsize=CLEAN_CACHE_ITEMS)
def _clean_cached(raw: str) -> str:
    return clean_text(raw)


@lru_cache(maxsize=1)
def _open_identifier() -> Any:  # py3langid's LanguageIdentifier over every language it knows, imported on first use
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    # probabilities, not raw scores: how sure the detector is decides whether a catalogue's languages outweigh it
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def _identifier() -> Any:
    """:func:`_open_identifier` restricted to :data:`LANGUAGES`, without loading the model a second time: a shallow
    copy, whose ``set_languages`` binds new (sliced) arrays to the copy and leaves the open one's whole."""
    identifier = copy.copy(_open_identifier())
    identifier.set_languages(list(LANGUAGES))
    return identifier


#: how much a catalogue's language shares weigh against a text's own words: a text's language is the most probable
#: by the detector x share ** this. With the shares themselves (1), each of Rakuten's English titles that the detector
#: found English but unsure (English video games, comics, imports: 133 of 2,095) read as French, the catalogue being
#: French at 0.93; 86 of them are English by eye. Their square root keeps 46 of those English while the French, German
#: or Italian titles taken for another language still read as French (72 of 76), and still reads every fashion and
#: Flipkart product as English. Smaller exponents keep more English titles (0.25: 69) but hold fashion by a thread:
#: were each other language 0.001 of its shares (a few foreign products), 0.25 would misread 53 titles, 0.5 none.
#: A fitted :class:`TextNormalizer` keeps the exponent it was fitted with (``prior_exponent_``).
PRIOR_EXPONENT = 0.5


def detect_language(
    texts: Sequence[str],
    max_chars: int = 400,
    prior: Mapping[str, float] | None = None,
    prior_exponent: float = PRIOR_EXPONENT,
) -> list[str]:
    """ISO 639-1 code of each text among :data:`LANGUAGES` (``"und"`` when it has no letters).

    Uses py3langid restricted to the catalogue languages, which avoids the
    classic confusions of short product titles with unrelated languages. Only
    the first ``max_chars`` characters are read: enough to decide, and the
    detector's cost grows with length.

    ``prior``: the share of each language in the texts' catalogue (:func:`language_prior`). Each text's language is
    then the most probable given its words *and* its catalogue (the shares to the power ``prior_exponent``): a
    short title of an English catalogue that reads a little German ("Alma Women Beige Kurta", German at 0.90 for the
    detector alone) stays English, while a text whose words are clearly another language's (any description of a few
    sentences, or an English title of a French catalogue such as "Call Of Duty - Infinite Warfare") keeps that
    language.
    """
    shares = [prior.get(language, 0.0) for language in LANGUAGES] if prior else [1.0] * len(LANGUAGES)
    weights = np.power(shares, prior_exponent)
    languages = []
    for text in texts:
        probabilities = _language_probabilities(text[:max_chars])
        best = UNDETERMINED if probabilities is None else LANGUAGES[int(np.argmax(np.multiply(probabilities, weights)))]
        languages.append(best)
    return languages


def catalogue_languages(
    texts: Sequence[str],
    prior: Mapping[str, float] | None = None,
    progress: bool = False,
    prior_exponent: float = PRIOR_EXPONENT,
) -> list[str]:
    """Each text's language as a model reads its catalogue (the language its lemmas and stop-words are taken in):
    :func:`detect_language` in light of the catalogue's language shares, ``prior`` (those a
    :class:`TextNormalizer` learnt when fitted, with the ``prior_exponent`` it was fitted with) or by default those
    of ``texts`` themselves (:func:`language_prior`). ``progress`` shows a bar while the shares are learnt (the
    detector reads every text then)."""
    if prior is None:
        prior = language_prior(progress_bar(texts, desc="languages", disable=not progress, unit="text"))
    return detect_language(texts, prior=prior, prior_exponent=prior_exponent)


def language_prior(texts: Iterable[str], max_chars: int = 400, max_iterations: int = 200) -> dict[str, float]:
    """Share of each of :data:`LANGUAGES` in a catalogue's ``texts``, for :func:`detect_language`'s ``prior``.

    The shares are the mixture weights that best explain the detector's probabilities for every text (maximum
    likelihood, by expectation-maximisation), so that a text the detector is unsure of counts little: 1,222 of
    fashion's 6,000 English titles are detected as German, Italian, Spanish or French, none with confidence, and
    the shares come out English 1.0; Rakuten's come out French 0.93, English 0.06. Texts without letters are left
    out; with none left the shares are equal.
    """
    found = [p for text in texts if (p := _language_probabilities(text[:max_chars])) is not None]
    shares = np.full(len(LANGUAGES), 1 / len(LANGUAGES))
    if found:
        # floored: a long text's probabilities reach 0 in floating point, and a text with no language left
        # possible would divide by zero
        probabilities = np.maximum(np.array(found), 1e-12)
        for _ in range(max_iterations):
            posterior = probabilities * shares
            updated = (posterior / posterior.sum(axis=1, keepdims=True)).mean(axis=0)
            converged = np.abs(updated - shares).max() < 1e-6
            shares = updated
            if converged:
                break
    return dict(zip(LANGUAGES, shares.tolist(), strict=True))


def main_language(texts: Sequence[str], sample: int = 500) -> str:
    """The most frequent language of (an evenly spaced sample of at most ``sample`` of) ``texts``, each read in
    light of the others (:func:`catalogue_languages`).

    A tie goes to the language listed first in :data:`LANGUAGES`, so the answer never depends on
    the interpreter's hash seed (it decides which heads a model trains).
    """
    step = max(1, len(texts) // sample)
    found = catalogue_languages(texts[::step])
    counts = {lang: found.count(lang) for lang in LANGUAGES}
    best = max(LANGUAGES, key=counts.__getitem__)
    return best if counts[best] else UNDETERMINED


@lru_cache(maxsize=200_000)
def _language_probabilities(text: str) -> tuple[float, ...] | None:
    """The detector's probability of each of :data:`LANGUAGES` for ``text``; ``None`` when it has no letters."""
    if not any(c.isalpha() for c in text):
        return None
    ranked = dict(_identifier().rank(text))
    return tuple(ranked[language] for language in LANGUAGES)


#: how sure the detector, free to name any of the languages it knows, must be of a language other than
#: :data:`LANGUAGES` for :func:`other_languages` to name it. At 0.8 it names none of Flipkart's 900 texts nor fashion's
#: 5,998, and two of Rakuten's 2,095, both rightly: a Dutch book title ("Wanneer Mijn Vader Sterft Laat Mij Dan
#: Staan", 0.81) and a dog leash described in Tagalog (0.86); of listings written for the purpose, Dutch (0.86, 0.89),
#: Polish and Russian ones, not a Portuguese one (0.64, Galician and Spanish the next guesses).
OTHER_LANGUAGE_PROBABILITY = 0.8


def other_languages(
    texts: Iterable[str], max_chars: int = 400, min_probability: float = OTHER_LANGUAGE_PROBABILITY
) -> list[str | None]:
    """For each text, its language when that is none of :data:`LANGUAGES` (py3langid's code: ``"nl"``, ``"ru"``)
    and the detector, free to name any language it knows, is sure of it (``min_probability``); ``None`` otherwise.

    :func:`detect_language` reads such a text as the most likely of :data:`LANGUAGES` (Dutch as German, Russian as
    French), whose stop-words and lemmas then apply: this says which texts those are."""
    found: list[str | None] = []
    for text in texts:
        language, probability = (None, 0.0)
        if any(c.isalpha() for c in text[:max_chars]):
            language, probability = _open_identifier().classify(text[:max_chars])
        found.append(language if language not in LANGUAGES and probability >= min_probability else None)
    return found


# Open-class words (nouns, adjectives, lexical verbs, numerals and ordinals) of the stop-word lists below. On a
# catalogue they name or describe products: "top", "front", "full", "fire" (extinguisher), "pièce", "dos" (sac à
# dos), "haut", "fait" (main), "hecho" (a mano), "nuevo", "largo" (manga larga), "estado" (buen estado), "doppio",
# "lungo", "nome"; numerals count, as digits do, which no list removes. They are kept as words. Auxiliaries and
# modals (ser, estar, haber, tener, poder, deber, ir; essere, avere, stare, dovere) stay stop-words, as "be",
# "have", "être", "avoir" do; so does Italian "sei" (six, but mostly "you are"), and "secondo" (mostly "according
# to"). German's list is Snowball's, function words but "machen".
_OPEN_CLASS_STOP_WORDS = {
    "en": (
        "amount back bill bottom call co con cry describe detail empty fill find fire first found front full get "
        "give go inc interest keep last ltd made mill move name next part put see serious show side sincere system "
        "take thick thin third top whole "
        "one two three four five six eight nine ten eleven twelve fifteen twenty forty fifty sixty hundred"
    ),
    "fr": (
        "bon chose choses début dessous dessus dire dos droite essai faire fais faisez fait faites fois force grande "
        "haut juste mine mot nom nommé nommée nommés nouveau nouveaux parole passé personne personnes pièce plein "
        "point sujet valeur voie voient vois voit vu état deux"
    ),
    "es": (
        "afirmó agregó ampleamos añadió anterior aseguró bajo buen buena buenas bueno buenos cabe cabo comentó "
        "conocer conseguimos conseguir consigue consiguen consigues considera consideró cosas creo cuenta da dado "
        "dan dar decir dejó dice dicen dicho dieron diferente diferentes dijeron dijo dio ejemplo empleais emplean "
        "emplear empleas empleo encuentra estado estados existe existen explicó expresó fin fuerza gran grandes "
        "gueno hace haceis hacemos hacen hacer hacerlo haces haciendo hago haz hecho hicieron hizo indicó informó "
        "intenta intentais intentamos intentan intentar intentas intento lado largo llegó lleva llevar lugar manera "
        "manifestó mayor mejor mencionó modo modode momento nueva nuevas nuevo nuevos parte pasada pasado poner "
        "posible pro próximo próximos quedó queremos quiere realizado realizar realizó sabe sabeis sabemos saben "
        "saber sabes sentid sentida sentidas sentido sentidos sentir siente sigue siguiente sintiendo tiempo total "
        "trabaja trabajais trabajamos trabajan trabajar trabajas trabajo trata ultimar usa usais usamos usan usar "
        "usas uso valor veces ver verdad verdadera verdadero vez "
        "dos tres cuatro cinco seis siete ocho primer primera primero primeros segunda segundo tercera ultimo "
        "último última últimos últimas"
    ),
    "it": (
        "buono comprare consecutivi consecutivo cosa doppio faccia facciamo facciano facciate faccio facemmo "
        "facendo facesse facessero facessi facessimo faceste facesti faceva facevamo facevano facevate facevi "
        "facevo fai fanno farai faranno fare farebbe farebbero farei faremmo faremo fareste faresti farete farà farò "
        "fece fecero feci fine gente gran grande lavoro lungo maggior maggiore nome nuovi nuovo persone promesso "
        "triplo volte "
        "due duo tre quattro cinque sette otto nove primo terzo quarto quinto ultimo"
    ),
    "de": "machen",
}
#: the lists whose open-class words were kept as words before a fitted :class:`TextNormalizer` kept its stop-words
#: (``stop_words_``): one unpickled without them, from a model trained before, drops Spanish, Italian and German's
_OPEN_CLASS_KEPT_BEFORE_STORED = ("en", "fr")


def _stop_word_list(language: str) -> list[str]:
    if language == "en":
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        return list(ENGLISH_STOP_WORDS)
    from stop_words import get_stop_words

    return get_stop_words(language)


@cache
def stop_words_for(
    language: str, strip_accents: bool, open_class_kept_in: tuple[str, ...] | None = None
) -> frozenset[str]:
    """Lower-case function words of ``language`` (accent-stripped too when asked): the words a bag of words drops.

    Only closed-class words (pronouns, determiners, prepositions, conjunctions, auxiliaries, degree adverbs), which
    say nothing of a product. English: scikit-learn's list (the Glasgow information-retrieval list); the
    ``stop-words`` package's English list (1,333 words, scikit-learn's and a web list's frequent words) holds
    "men", "home", "case", "mug", "general", "number", "free": the gender of 2,917 of 6,000 fashion products, a
    product, a category. Other languages: the ``stop-words`` package's lists (German's is Snowball's, French's
    Snowball's and a few more; Spanish's and Italian's hold many lexical verbs, nouns and adjectives). From the
    lists of ``open_class_kept_in`` (by default every list), the open-class words they hold are taken out
    (``_OPEN_CLASS_STOP_WORDS``)."""
    words = {w.lower() for w in _stop_word_list(language)}
    if open_class_kept_in is None or language in open_class_kept_in:
        words -= set(_OPEN_CLASS_STOP_WORDS.get(language, "").split())
    if strip_accents:
        words |= {remove_accents(w) for w in words}
    return frozenset(words)


def remove_accents(text: str) -> str:
    """``"Été"`` -> ``"Ete"``: decompose and drop combining marks."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=500_000)
def lemma(token: str, language: str) -> str:
    """simplemma lemma of a lower-case token in ``language`` (the token itself when unknown)."""
    import simplemma

    try:
        return simplemma.lemmatize(token, lang=language)
    except ValueError:  # a language simplemma does not know
        return token


class TextNormalizer(AddedParametersDefaulted, TransformerMixin, BaseEstimator):
    """Clean texts -> normalised token strings (tokens joined by single spaces).

    Parameters
    ----------
    clean:
        apply :func:`clean_text` first (turn off when the input is already clean).
    lowercase, strip_accents:
        case folding and accent removal (after lemmatisation, which needs accents).
    remove_stop_words:
        drop the stop-words of ``stop_word_languages``, written with their accents or without them ("très" and
        "tres" alike).
    lemmatize:
        replace each word by its simplemma lemma in the product's detected language.
    stop_word_languages:
        ``"auto"``: each product's stop-words are those of its own language (the one
        its lemmas are taken in), so that the French "car" or "or" (gold) survive in
        an English title and vice versa; or a fixed tuple of codes whose stop-words
        are removed from every product, e.g. ``("fr", "en")``.
    language:
        ``"auto"`` to detect each product's language (for lemmas) in light of its catalogue's
        languages: their shares (:func:`language_prior`) among the texts given to ``fit`` or,
        unfitted, among those transformed together, so that an English catalogue's short titles
        are read as English unless their words are clearly another language's; or one fixed
        code such as ``"fr"`` for a monolingual catalogue (skips detection).
    default_language:
        language used for texts whose language cannot be detected.

    ``fit`` learns the catalogue's language shares, ``language_prior_``, and keeps how much they weigh,
    ``prior_exponent_`` (with ``language="auto"``), and the stop-words of each language a product may be read in,
    ``stop_words_``: a fitted normalizer reads text as it did when fitted, whatever later versions change (one
    fitted by a version that kept neither reads as that version did once unpickled). ``transform(texts)`` returns
    ``list[str]`` of the same length.
    """

    def __init__(
        self,
        clean: bool = True,
        lowercase: bool = True,
        strip_accents: bool = False,
        remove_stop_words: bool = True,
        lemmatize: bool = True,
        stop_word_languages: tuple[str, ...] | Literal["auto"] = "auto",
        language: str = "auto",
        default_language: str = "en",
    ):
        self.clean = clean
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.remove_stop_words = remove_stop_words
        self.lemmatize = lemmatize
        self.stop_word_languages = stop_word_languages
        self.language = language
        self.default_language = default_language

    def fit(self, texts: Sequence[str], y: object = None) -> TextNormalizer:
        if self._detects_languages():
            self.language_prior_ = language_prior(self._cleaned(texts))
            self.prior_exponent_ = PRIOR_EXPONENT
        self.stop_words_ = self._stop_word_lists()
        return self

    def __setstate__(self, state: dict[str, object]) -> None:
        super().__setstate__(state)
        # pickled by a version that did not keep them: a model trained before, whose normalizer was fitted (models
        # pickle no unfitted one), is read as it was trained, the shares weighed in full and the lists of then
        if hasattr(self, "language_prior_") and not hasattr(self, "prior_exponent_"):
            self.prior_exponent_ = 1.0
        if not hasattr(self, "stop_words_"):
            self.stop_words_ = self._stop_word_lists(
                open_class_kept_in=_OPEN_CLASS_KEPT_BEFORE_STORED, typed_without_accents=False
            )

    def _stop_word_lists(
        self, open_class_kept_in: tuple[str, ...] | None = None, typed_without_accents: bool = True
    ) -> dict[str, tuple[str, ...]]:
        """The stop-words of each language whose stop-words a product may lose (its own or the fixed ones), sorted
        so that a pickled normalizer's bytes do not depend on the hash seed. ``typed_without_accents``: each also as
        typed without its accents ("tres", "apres", "meme" of a seller whose keyboard has none), which a normalizer
        fitted before kept only with ``strip_accents``."""
        if not self.remove_stop_words:
            return {}
        if self.stop_word_languages != "auto":
            languages = tuple(self.stop_word_languages)
        elif self.language == "auto":
            languages = (*LANGUAGES, self.default_language)
        else:
            languages = (self.language,)
        accentless = self.strip_accents or typed_without_accents
        return {
            language: tuple(sorted(stop_words_for(language, accentless, open_class_kept_in)))
            for language in dict.fromkeys(languages)
        }

    def _detects_languages(self) -> bool:
        per_product_stop_words = self.remove_stop_words and self.stop_word_languages == "auto"
        return self.language == "auto" and (self.lemmatize or per_product_stop_words)

    def _cleaned(self, texts: Sequence[str]) -> list[str]:
        return clean_texts(texts) if self.clean else [t or "" for t in texts]

    def transform(self, texts: Sequence[str]) -> list[str]:
        texts = self._cleaned(texts)
        if self._detects_languages():
            prior_exponent = getattr(self, "prior_exponent_", PRIOR_EXPONENT)
            detected = catalogue_languages(texts, getattr(self, "language_prior_", None), prior_exponent=prior_exponent)
            languages = [self.default_language if lang == UNDETERMINED else lang for lang in detected]
        else:
            languages = [self.default_language if self.language == "auto" else self.language] * len(texts)
        stop_words = self._stop_words_by_language(set(languages))
        return [self._normalize(text, lang, stop_words[lang]) for text, lang in zip(texts, languages, strict=True)]

    def _stop_words_by_language(self, languages: Iterable[str]) -> dict[str, frozenset[str]]:
        """The stop-words dropped from a product read in each of ``languages``: those kept when fitted (unfitted,
        today's)."""
        lists = self.stop_words_ if hasattr(self, "stop_words_") else self._stop_word_lists()
        if self.stop_word_languages == "auto":
            return {language: frozenset(lists.get(language, ())) for language in languages}
        return dict.fromkeys(languages, frozenset().union(*lists.values()))

    def _normalize(self, text: str, language: str, stop_words: frozenset[str]) -> str:
        out = []
        for token in _word().findall(text.lower() if self.lowercase else text):
            if token.lower() in stop_words:
                continue
            if self.lemmatize and not token.isdigit():
                token = lemma(token, language)
                if self.lowercase:  # simplemma restores the case of proper nouns
                    token = token.lower()
            if self.strip_accents:
                token = remove_accents(token)
            if token.lower() not in stop_words:
                out.append(token)
        return " ".join(out)
