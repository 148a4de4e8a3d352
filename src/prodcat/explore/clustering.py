"""The feasibility study: features -> reduction -> KMeans -> scores against the true categories.

:class:`FeasibilityStudy` holds the choices (feature sets, reductions, level,
seed); :meth:`FeasibilityStudy.run` takes a canonical catalogue frame and
returns a :class:`StudyResult` with one :class:`ClusteringRun` per feature set
and reduction.

A feature set is a registered extractor name (``tfidf``, ``effnet_lite0``) or
several joined by ``+`` (``tfidf+effnet_lite0``): the blocks are normalised
and weighted equally by :func:`~prodcat.explore.reduction.combine_blocks`.
Each extractor runs once per study even when it appears in several sets.

KMeans is the clustering throughout; the reductions decide what it sees. On
Flipkart, with the same features, spectral clustering on the kNN graph, Ward
linkage, and KMeans into 4k clusters merged back to k all scored lower than
KMeans on kNN-smoothed PCA, which the UMAP reduction beats in turn on Flipkart
and Rakuten, though not on fashion's many small classes (see
:mod:`~prodcat.explore.reduction`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from prodcat.catalog.schema import category_at_level, modality_mask
from prodcat.explore.choices import DEFAULT_FEATURES, DEFAULT_REDUCTIONS, REDUCTIONS
from prodcat.explore.metrics import Categories, ClusterMatching, clustering_scores, match_clusters
from prodcat.explore.reduction import combine_blocks, make_reduction, warm_up_umap
from prodcat.features.base import extractor_names, find_extractor, seeded_extractor
from prodcat.parallel import worker_count

log = logging.getLogger(__name__)


def check_feature_sets(feature_sets: Sequence[str]) -> None:
    """Raise ``ValueError`` naming any extractor of ``feature_sets`` that is not registered, or a feature set with an
    empty part (``tfidf+``: the error named an empty extractor, ``unknown feature extractor(s): ;``), before any
    work."""
    if joined_badly := [feature_set for feature_set in feature_sets if "" in feature_set.split("+")]:
        raise ValueError(
            f"feature set(s) with an empty part: {', '.join(map(repr, joined_badly))}; join extractors by one '+', "
            "e.g. tfidf+effnet_lite0"
        )
    named = {name for feature_set in feature_sets for name in feature_set.split("+")}
    if unknown := sorted(name for name in named if find_extractor(name) is None):
        raise ValueError(f"unknown feature extractor(s): {', '.join(unknown)}; known: {', '.join(extractor_names())}")


def check_reductions(reductions: Sequence[str]) -> None:
    """Raise ``ValueError`` naming any of ``reductions`` that is not one of :data:`REDUCTIONS` (before any work)."""
    if unknown := [name for name in reductions if name not in REDUCTIONS]:
        raise ValueError(f"unknown reduction(s): {', '.join(unknown)}; known: {', '.join(REDUCTIONS)}")


def at_level(level: int | None) -> str:
    """Where the categories clustered are cut, as read after them: ``at level 2``, or ``at the full path`` for
    ``None``."""
    return f"at level {level}" if level else "at the full path"


def cluster_points(points: np.ndarray, n_clusters: int, *, n_init: int = 10, seed: int = 0) -> np.ndarray:
    """KMeans labels of ``points`` ``(n, d)``: ``(n,)`` ints in ``[0, n_clusters)``.

    Several initialisations (``n_init``) keep the best inertia, which makes the
    result far less dependent on the seed than a single k-means++ start.
    """
    return KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(points)


def sample_covering_every_label(frame: pd.DataFrame, labels: Categories, n: int, *, seed: int = 0) -> pd.DataFrame:
    """``n`` rows of ``frame`` keeping each label's share; every label keeps a row when ``n`` allows (a cluster
    matched against the categories needs them all, where ``train --sample``'s
    :func:`~prodcat.commands.pooled_stratified_sample` pools the rare ones, and may leave them out).

    Rows are shuffled with ``seed`` and ranked within their label; each label's
    first row is taken first, then rows by relative rank (rank / label size),
    so shares hold to within one row. The catalogue order is kept.
    """
    if n >= len(frame):
        return frame
    by_row = pd.Series(np.asarray(labels, dtype=object), index=frame.index)
    shuffled = by_row.iloc[np.random.default_rng(seed).permutation(len(frame))]
    rank = shuffled.groupby(shuffled, sort=False).cumcount()
    order = pd.DataFrame({"later": rank > 0, "relative": (rank + 0.5) / shuffled.map(shuffled.value_counts())})
    chosen = order.sort_values(["later", "relative"], kind="stable").index[:n]
    return frame.loc[frame.index.isin(chosen)]


@dataclass
class ClusteringRun:
    """One feature set, one reduction: its clusters and how they match the categories (``n`` products)."""

    features: str
    reduction: str
    #: positions in the study's frame of the products clustered (those with the features' modality), ``(n,)``
    rows: np.ndarray
    #: reduced points that were clustered, ``float32`` ``(n, d)``
    points: np.ndarray
    #: cluster label per product, ``(n,)`` ints in ``[0, n_clusters)``
    clusters: np.ndarray
    #: ``ari``, ``ami``, ``nmi`` and ``silhouette`` of the clusters against the categories
    #: (:func:`~prodcat.explore.metrics.clustering_scores`)
    scores: dict[str, float]
    matching: ClusterMatching
    #: wall-clock seconds of its extractors (each computed once per study, counted in every set using it),
    #: block combination, reduction and clustering
    seconds: float
    #: the part of :attr:`seconds` its extractors took
    feature_seconds: float
    #: what its products have, as in "products with ...": "text", "a photo", "text and a photo"; "" unsaid
    modalities: str = ""

    @property
    def n_clusters(self) -> int:
        """The number of clusters asked of KMeans: that of the categories of its products."""
        return len(self.matching.categories)

    @property
    def products(self) -> str:
        """The products it clustered, in words: '440 products with text and a photo'."""
        products = f"{len(self.rows):,} products"
        return f"{products} with {self.modalities}" if self.modalities else products

    def record(self, *, level: int | None, rank: int = 1) -> dict[str, Any]:
        """The record of this run, its figures unrounded (:func:`json_record` rounds them for ``clustering.json``);
        ``rank``: its place among the runs on its products."""
        return {
            "features": self.features,
            "reduction": self.reduction,
            "products": self.products,
            "rank": rank,
            **self.scores,
            "matched_accuracy": self.matching.accuracy,
            "matched_accuracy_chance": self.matching.chance,
            "seconds": self.seconds,
            "feature_seconds": self.feature_seconds,
            "dims": int(self.points.shape[1]),
            "n": len(self.rows),
            "k": self.n_clusters,
            "level": level,
        }


@dataclass
class StudyResult:
    """Everything a report needs: the products studied, their categories, the runs."""

    #: the ``n`` labelled products studied, a canonical catalogue frame indexed ``0 .. n - 1`` (a run's ``rows``)
    frame: pd.DataFrame
    #: true category (at ``level``) of each product of ``frame``, ``(n,)``
    categories: np.ndarray
    level: int | None
    seed: int
    runs: list[ClusteringRun] = field(default_factory=list)
    #: how many labelled products of the catalogue a ``--sample`` drew ``frame`` from; ``None``: all were studied
    sampled_from: int | None = None
    #: feature set -> why it could not be studied (e.g. an extractor that cannot fit this catalogue)
    skipped: dict[str, str] = field(default_factory=dict)
    #: ``(feature set, rows)`` -> its combined, normalised blocks on those products, ``(len(rows), d)``: the space
    #: every reduction starts from, rebuilt from the extractors' outputs on request (the report's maps), not kept
    #: as one dense copy per feature set; ``None`` for a result assembled without a study
    feature_space: Callable[[str, np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_categories(self) -> int:
        """The number of distinct categories of the products studied."""
        return len(np.unique(self.categories))

    def categories_of(self, run: ClusteringRun) -> np.ndarray:
        """True categories of the products ``run`` clustered, ``(len(run.rows),)``."""
        return self.categories[run.rows]

    def product_sets(self) -> list[list[ClusteringRun]]:
        """The runs grouped by the products they clustered, each group best first (ARI, then AMI: NMI is not
        corrected for chance, see :func:`clustering_scores`); the groups of most products first.

        Runs are ranked only against runs on the same products, or nearly (:data:`SAME_PRODUCTS_OVERLAP`): each
        feature set is studied on the products having its modalities (on Rakuten 2,095 with text, 1,835 with a photo,
        440 with both), and a score on the 440 says nothing of how the same features would do on the 2,095. Each
        run is compared with its group's largest run only: of runs on 1,000, 990 and 980 nested products, the 990 join
        the 1,000, and the 980 (98% of the 1,000) are ranked apart although they are 99% of the 990.
        """
        # the largest product sets first: each run joins the first group whose products are nearly its own
        groups: list[list[ClusteringRun]] = []
        for run in sorted(self.runs, key=lambda run: len(run.rows), reverse=True):
            group = next((group for group in groups if _nearly_the_same(group[0].rows, run.rows)), None)
            if group is None:
                groups.append([run])
            else:
                group.append(run)
        return [sorted(group, key=lambda run: (run.scores["ari"], run.scores["ami"]), reverse=True) for group in groups]

    def records(self) -> list[dict[str, Any]]:
        """The runs' JSON records, by product set (:meth:`product_sets`), each with its rank in its set and the set
        it was ranked in (``product_set``: the largest products of the set, or nearly them; numbered from the second
        set so named, as when keypoints were found in as many photos of two sets of products, not nearly the same)."""
        records = []
        named: Counter[str] = Counter()
        for runs in self.product_sets():
            largest = max(runs, key=lambda run: len(run.rows))
            nearly = any(len(run.rows) != len(largest.rows) for run in runs)
            products = largest.products
            if len({run.modalities for run in runs}) > 1:
                # text runs and photo runs on the same products (a sample all of whose products have both): named
                # by the largest run's alone, the set called photo runs' products '120 products with text'
                products = f"{len(largest.rows):,} products with {_modality_words(['text', 'image'])}"
            product_set = f"{products}, or nearly them" if nearly else products
            named[product_set] += 1
            if named[product_set] > 1:  # a name shared, the report would show both sets as one and rank them together
                product_set = f"{product_set} (set {named[product_set]})"
            for rank, run in enumerate(runs, start=1):
                record = run.record(level=self.level, rank=rank)
                # what a reader needs to tell a sample's scores from the catalogue's, and to draw it again
                records.append(
                    record | {"product_set": product_set, "seed": self.seed, "sampled_from": self.sampled_from}
                )
        return records

    def best(self) -> ClusteringRun:
        """The best run on the most products: the one the report details."""
        return self.product_sets()[0][0]


#: decimals ``clustering.json`` keeps of a record's seconds; of its scores and accuracy, :data:`SCORE_DECIMALS`
SECONDS_DECIMALS = {"seconds": 2, "feature_seconds": 2}
SCORE_DECIMALS = 4


def json_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (:meth:`ClusteringRun.record`) with its floats rounded for ``clustering.json``. Rounded there only:
    the console and the report format the exact figures, which, once rounded to 4 decimals then to 3, read another
    number than the log's and scikit-learn's (an AMI of 0.59449: 0.5945, then 0.595)."""
    return {
        key: round(value, SECONDS_DECIMALS.get(key, SCORE_DECIMALS)) if isinstance(value, float) else value
        for key, value in record.items()
    }


#: runs whose products overlap at least this much (shared over all, as a share) are ranked together: Flipkart's 3
#: products without a photo or a few without SIFT keypoints do not make the 897 others another catalogue
SAME_PRODUCTS_OVERLAP = 0.99


def _nearly_the_same(rows: np.ndarray, other: np.ndarray) -> bool:
    """Whether two runs' products, ``(n,)`` and ``(m,)`` row indices, overlap by :data:`SAME_PRODUCTS_OVERLAP`."""
    shared = len(np.intersect1d(rows, other, assume_unique=True))
    return shared >= SAME_PRODUCTS_OVERLAP * (len(rows) + len(other) - shared)


#: what an extractor raises when it cannot describe this catalogue here: no keypoint in any photo (ValueError), an
#: encoder neither cached nor downloadable offline (OSError), an optional weights package not installed
#: (ImportError); its feature sets are skipped with the reason, the others studied
EXTRACTOR_FAILURES = (ValueError, OSError, ImportError)

#: the fewest labelled products a feasibility study runs on
MIN_PRODUCTS = 10


class FeasibilityStudy:
    """Do products of one category group together? Cluster them and compare with their categories.

    Args:
        features: feature sets, each an extractor name or names joined by ``+``.
        reductions: names from :data:`~prodcat.explore.choices.REDUCTIONS`.
        level: category depth compared against (1 = top level; ``None`` = full path).
        n_components: PCA dimensions kept by the ``pca`` and ``pca+knn`` reductions.
        n_init: KMeans initialisations.
        seed: seeds every random step (SVD, PCA, t-SNE, UMAP, KMeans, and the extractors
            that learn with randomness: Word2Vec, the visual-word codebooks), unless
            ``extractor_params`` gives an extractor its own.
        extractor_params: per extractor name, keyword arguments for
            :func:`~prodcat.features.base.make_extractor`.
        n_jobs: processes reducing and clustering feature sets in parallel (t-SNE and UMAP
            run single-threaded: 2 on 2 cores halves the study's reduction time); at most one per core
            and per run (:func:`worker_count`).
        progress: show progress bars.
    """

    def __init__(
        self,
        features: Sequence[str] = DEFAULT_FEATURES,
        reductions: Sequence[str] = DEFAULT_REDUCTIONS,
        level: int | None = 1,
        n_components: int = 50,
        n_init: int = 10,
        seed: int = 0,
        extractor_params: dict[str, dict[str, Any]] | None = None,
        n_jobs: int = 1,
        progress: bool = True,
    ):
        self.features = features
        self.reductions = reductions
        self.level = level
        self.n_components = n_components
        self.n_init = n_init
        self.seed = seed
        self.extractor_params = extractor_params
        self.n_jobs = n_jobs
        self.progress = progress

    def run(self, frame: pd.DataFrame) -> StudyResult:
        """Study the labelled products of ``frame`` (a canonical catalogue frame): one :class:`ClusteringRun` per
        feature set and reduction in the result, each on the products having what its feature set reads.

        Raises ``ValueError`` before any work for an unknown extractor or reduction, fewer than
        :data:`MIN_PRODUCTS` labelled products, a single category or each product alone in its own, and
        after the extractors when no feature set could be studied."""
        check_reductions(self.reductions)
        check_feature_sets(self.features)
        labelled = frame[frame["category"].notna()].reset_index(drop=True)
        if len(labelled) < len(frame):
            log.info("%d unlabelled products left out of the study", len(frame) - len(labelled))
        if len(labelled) < MIN_PRODUCTS:
            raise ValueError(
                f"{len(labelled)} labelled product(s): a feasibility study needs at least {MIN_PRODUCTS} "
                "(the reductions and the vocabularies fail on fewer, and the scores would mean nothing)"
            )
        categories = category_at_level(labelled["category"], self.level)
        if len(np.unique(categories)) < 2:
            raise ValueError(f"the catalogue has a single category {at_level(self.level)}; clustering needs two")
        if len(np.unique(categories)) == len(labelled):  # a --sample smaller than the categories, a deep --level
            raise ValueError(
                f"each of the {len(labelled)} products is alone in its category {at_level(self.level)}: "
                "any clustering into as many clusters matches the categories exactly (ARI 1); "
                "study more products or a coarser --level"
            )
        blocks = _BlockStore(labelled, self.extractor_params or {}, progress=self.progress, seed=self.seed)
        result = StudyResult(labelled, categories, self.level, self.seed, feature_space=blocks.combined)
        # Lazy: joblib pulls a feature set's tasks when a worker frees up, so the extraction of the
        # next feature sets (in this process) overlaps the reductions of the previous ones (in the workers).
        prepared = (
            block
            for feature_set in self.features
            if (block := self._prepare(feature_set, blocks, categories, result.skipped)) is not None
        )
        total = len(self.features) * len(self.reductions)
        runs = Parallel(n_jobs=worker_count(self.n_jobs, total), return_as="generator")(
            delayed(_reduce_and_cluster)(block, reduction, self.n_components, self.n_init, self.seed)
            for block in prepared
            for reduction in self.reductions
        )
        for run in tqdm(runs, total=total, desc="features, reduce + cluster", disable=not self.progress, unit="run"):
            result.runs.append(run)
            log.info(
                "%s / %s: ARI %.3f, AMI %.3f, NMI %.3f, silhouette %.3f (%.1fs)",
                run.features, run.reduction, run.scores["ari"], run.scores["ami"], run.scores["nmi"],
                run.scores["silhouette"], run.seconds,
            )  # fmt: skip
        if not result.runs:
            reasons = "; ".join(f"{features}: {reason}" for features, reason in result.skipped.items())
            raise ValueError(f"no feature set could be studied ({reasons or 'none given'})")
        return result

    def _prepare(
        self, feature_set: str, blocks: _BlockStore, categories: np.ndarray, skipped: dict[str, str]
    ) -> _FeatureSet | None:
        """One feature set's combined blocks, on the products that have every one of its blocks.

        A product without text is a zero vector to a text extractor: left in, the products without
        text would cluster together whatever their category (on Rakuten, whose 3,490 products are
        40% photo-only, ``minilm+e5+effnet_lite0`` gave clusters either all photo-only or all with
        text), so each feature set is studied on the products it fully sees.
        A feature set that cannot be studied is recorded in ``skipped`` (with the reason) and gives ``None``.
        """
        names = feature_set.split("+")
        matrices = []
        for name in names:
            try:
                matrices.append(blocks.get(name))
            except EXTRACTOR_FAILURES as error:
                skipped[feature_set] = _failure_reason(name, error, alone=len(names) == 1)
                log.warning("%s skipped: %s", feature_set, skipped[feature_set])
                return None
        rows = np.flatnonzero(np.logical_and.reduce([blocks.available[name] for name in names]))
        n_categories = len(np.unique(categories[rows]))
        # available() counts a photo only if it decodes (and, for visual words, has a keypoint)
        needs = _modality_words((blocks.modality[n] for n in names), photo="a readable photo")
        if not len(rows):  # "only 0 product(s) have a photo", said of photos that were all there but corrupt
            skipped[feature_set] = f"no product has {needs}"
        elif len(rows) < MIN_PRODUCTS:  # as for the whole study: 4 products with a photo scored ARI 1.000, ranked 1st
            skipped[feature_set] = f"only {len(rows)} product(s) have {needs}: a study needs at least {MIN_PRODUCTS}"
        elif n_categories < 2:
            skipped[feature_set] = f"fewer than 2 categories among the {len(rows)} products it describes"
        elif n_categories == len(rows):  # any clustering into as many clusters would score ARI 1
            skipped[feature_set] = f"each of the {len(rows)} products it describes is alone in its category"
        elif (distinct := distinct_rows([m[rows] for m in matrices])) < n_categories:
            # KMeans would split identical products by the reductions' rounding noise (PCA of identical rows
            # differs in the 7th decimal), and that noise was scored: ARI 0.04, silhouette 0.53 for identical texts
            skipped[feature_set] = (
                f"its {len(rows)} products have only {distinct} distinct feature vector(s) (identical texts or "
                f"photos), fewer than their {n_categories} categories: nothing to cluster them by"
            )
        if feature_set in skipped:
            log.warning("%s skipped: %s", feature_set, skipped[feature_set])
            return None
        if len(rows) < len(categories):
            log.info("%s: %d of %d products have all its blocks", feature_set, len(rows), len(categories))
        started = time.perf_counter()
        combined = blocks.combined(feature_set, rows)
        feature_seconds = sum(blocks.seconds[name] for name in names)
        return _FeatureSet(
            feature_set,
            rows,
            combined,
            categories[rows],
            feature_seconds,
            time.perf_counter() - started,
            _modality_words(blocks.modality[n] for n in names),
        )


def distinct_rows(blocks: Sequence[Any]) -> int:
    """How many distinct products ``blocks`` (arrays, dense or sparse, of shape ``(n, d_i)``) tell apart:
    products alike in every block count once. Read on the extractors' outputs, which are exactly equal for
    identical inputs, unlike the reduced points."""
    digests = [hashlib.blake2b(digest_size=16) for _ in range(blocks[0].shape[0])] if blocks else []
    for block in blocks:
        if sp.issparse(block):
            block = sp.csr_matrix(block)
            block.sum_duplicates()  # sorted, unique column indices: equal rows have equal bytes
            rows = (
                block.indices[start:end].tobytes() + block.data[start:end].tobytes()
                for start, end in zip(block.indptr[:-1], block.indptr[1:], strict=True)
            )
        else:
            rows = (row.tobytes() for row in np.ascontiguousarray(block))
        for digest, row in zip(digests, rows, strict=True):
            digest.update(len(row).to_bytes(8, "little") + row)  # the length: one block's end is not the next's start
    return len({digest.digest() for digest in digests})


@dataclass
class _FeatureSet:
    """A feature set ready to reduce: its products and their combined, normalised blocks."""

    name: str
    rows: np.ndarray
    #: ``(len(rows), d)`` dense
    combined: np.ndarray
    categories: np.ndarray
    feature_seconds: float
    combine_seconds: float
    #: what its products have ("text", "a photo", "text and a photo")
    modalities: str


def _reduce_and_cluster(block: _FeatureSet, reduction: str, n_components: int, n_init: int, seed: int) -> ClusteringRun:
    if reduction == "umap":
        warm_up_umap()  # once per process: numba's compilation is not this run's time
    started = time.perf_counter()
    # One BLAS/OpenMP thread wherever the run is, so that --jobs and the cores do not change its figures: with
    # --jobs 1 it ran in this process on every core, in a worker on one, and its nearest-neighbour distances, summed
    # in another order, moved UMAP (bovw_orb on 42 Flipkart products: ARI 0.050 with --jobs 1, 0.104 with 2)
    with threadpool_limits(1):
        reducer = make_reduction(reduction, block.combined.shape, n_components=n_components, seed=seed)
        points = reducer.fit_transform(block.combined)
        k = len(np.unique(block.categories))
        clusters = cluster_points(points, k, n_init=n_init, seed=seed)
        scores = clustering_scores(block.categories, clusters, points, seed=seed)
    matching = match_clusters(block.categories, clusters, seed=seed)
    seconds = block.feature_seconds + block.combine_seconds + time.perf_counter() - started
    return ClusteringRun(
        block.name,
        reduction,
        block.rows,
        points,
        clusters,
        scores,
        matching,
        seconds,
        block.feature_seconds,
        block.modalities,
    )


#: scikit-learn's vectorizers, when the texts hold no token at all (the text extractors keep every term of a catalogue
#: whose terms would all be pruned by min_df / max_df, so that is the one empty vocabulary left)
EMPTY_VOCABULARY = "empty vocabulary"


def _vocabulary_failure(error: Exception) -> ValueError | None:
    """A vectorizer's empty vocabulary in the words of the study (scikit-learn's message speaks of stop words and
    documents); ``None`` for any other error."""
    if EMPTY_VOCABULARY not in str(error):
        return None
    return ValueError("no word to read in their texts: none holds a word of two letters or more (stop-words aside)")


def _modality_words(modalities: Iterable[str], *, photo: str = "a photo") -> str:
    """What products need for extractors of these modalities: 'text', 'a photo', 'text and a photo' (``photo``
    names the photo's part)."""
    given = set(modalities)
    return " and ".join(words for modality, words in (("text", "text"), ("image", photo)) if modality in given)


def _failure_reason(name: str, error: Exception, *, alone: bool) -> str:
    """Why the extractor ``name`` cannot be studied, as a skipped feature set's reason: named when it is one block
    of several (which one failed), not when it is the whole set, whose name the reason already follows; an
    extractor that names itself in its message ('bovw_orb: no readable photo ...') is named once."""
    reason = str(error).removeprefix(f"{name}: ")
    return reason if alone else f"{name}: {reason}"


class _BlockStore:
    """The extractor outputs of one study, each computed once, on first request."""

    def __init__(self, frame: pd.DataFrame, params: dict[str, dict[str, Any]], *, progress: bool, seed: int = 0):
        self.frame = frame
        self.params = params
        self.progress = progress
        self.seed = seed
        self.matrices: dict[str, Any] = {}
        #: extractor name -> ``(n,)`` bool, products that have its modality
        self.available: dict[str, np.ndarray] = {}
        #: extractor name -> the modality it reads ("text" or "image")
        self.modality: dict[str, str] = {}
        #: extractor name -> seconds its fit_transform took
        self.seconds: dict[str, float] = {}
        #: extractor name -> the error it raised (not retried for the next set using it)
        self.failures: dict[str, Exception] = {}

    def get(self, name: str) -> Any:
        """``(n, d)`` features of every product (dense or sparse) from the extractor ``name``."""
        if name in self.failures:
            raise self.failures[name]
        if name not in self.matrices:
            started = time.perf_counter()
            given = self.params.get(name, {})
            extractor = seeded_extractor(name, given, self.seed)
            if "progress" in extractor.get_params():
                extractor.set_params(progress=self.progress)
            # One BLAS/OpenMP thread: on shared cores, BoVW's oversubscribed k-means ran 4.5x slower.
            try:
                # said so, not as the extractor's own complaint ("empty vocabulary"); the mask, not available(),
                # which decodes every photo
                if not modality_mask(self.frame, extractor.modality).any():
                    raise ValueError(f"no product has {_modality_words([extractor.modality])}")
                with threadpool_limits(1):
                    self.matrices[name] = extractor.fit_transform(self.frame)
            except EXTRACTOR_FAILURES as error:
                said = _vocabulary_failure(error)
                self.failures[name] = said or error
                if said is not None:
                    raise said from error
                raise
            self.available[name] = np.asarray(extractor.available(self.frame), dtype=bool)
            self.modality[name] = extractor.modality
            self.seconds[name] = time.perf_counter() - started
        return self.matrices[name]

    def combined(self, feature_set: str, rows: np.ndarray) -> np.ndarray:
        """The blocks of ``feature_set`` (names joined by ``+``) on the products at ``rows``, normalised and
        combined: ``(len(rows), d)`` dense, the same for the same rows whenever it is asked for.

        On one BLAS/OpenMP thread, as the runs reduce it: the SVD of a sparse block (TF-IDF on Flipkart's 900
        products) differed by up to 7e-5 between one thread and two, which the cores of the machine then decided."""
        blocks = [self.get(name)[rows] for name in feature_set.split("+")]
        with threadpool_limits(1):
            return combine_blocks(blocks, seed=self.seed)
