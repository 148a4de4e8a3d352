"""From extractor outputs to the low-dimensional points that get clustered.

Two steps:

1. :class:`BlockNormalizer`, once per feature block (one extractor's output):
   sparse blocks (bag of words, TF-IDF) are first projected by TruncatedSVD
   (latent semantic analysis: PCA cannot centre a sparse matrix without
   densifying it), then every row is L2-normalised so that cosine geometry
   becomes Euclidean geometry, which is what KMeans measures.
   :func:`combine_blocks` concatenates normalised blocks scaled by
   ``1/sqrt(n_blocks)``: each block then contributes the same norm to every
   product, so a 1280-d image embedding does not drown a 100-d text one.
2. A named reduction (:data:`REDUCTIONS`, built by :func:`make_reduction`):
   ``pca`` keeps ``n_components`` principal axes; ``pca+knn`` then averages
   each product with its nearest neighbours (:class:`KNNSmoother`: a few steps
   of diffusion on the k-nearest-neighbour graph, which pulls products towards
   the dense core of their group before KMeans); ``tsne`` maps the combined
   blocks to 2-D (:class:`TSNE2D`, the report's maps); ``umap`` maps them to 10
   dimensions (:class:`UMAPReducer`) where each group is tight and the groups
   far apart, the shape KMeans recovers best.

t-SNE and UMAP read the combined blocks themselves, with cosine geometry (t-SNE:
Euclidean on unit rows), not a PCA of them: the cosine of two combined vectors is the mean of their
per-block cosines, the similarity the encoders were trained for, while 50 PCA
axes of the 2,000-odd dimensions lose much of the neighbourhood structure.
On Flipkart (MiniLM + e5 + Lite0, seeds 0-2) KMeans on a PCA-then-t-SNE map
scored ARI 0.63-0.65, on a t-SNE of the blocks 0.73-0.76; PCA then UMAP
0.59-0.66, UMAP of the blocks 0.76-0.78.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import Normalizer, normalize

from prodcat.explore.choices import REDUCTIONS


class BlockNormalizer(TransformerMixin, BaseEstimator):
    """L2-normalise the rows of one feature block, first reducing it with TruncatedSVD if sparse.

    Input ``(n, d)`` dense or sparse; output dense ``float32`` ``(n, d')`` with
    ``d' = max(1, min(svd_components, d - 1, n - 1))`` for sparse input (TruncatedSVD needs fewer components than
    columns and rows), ``d`` otherwise.
    Rows that are all zero (a product without this modality) stay zero.
    """

    def __init__(self, svd_components: int = 100, random_state: int | None = 0):
        self.svd_components = svd_components
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> BlockNormalizer:
        """Fit ``svd_`` on a sparse ``X`` ``(n, d)``; ``None`` for a dense one (nothing to learn)."""
        self.svd_ = None
        if sp.issparse(X):
            n_components = max(1, min(self.svd_components, X.shape[1] - 1, X.shape[0] - 1))
            self.svd_ = TruncatedSVD(n_components=n_components, random_state=self.random_state).fit(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """``float32`` ``(n, d')``: ``X`` projected by ``svd_`` if fitted on a sparse block, rows of norm 1 (or 0)."""
        dense = self.svd_.transform(X) if self.svd_ is not None else np.asarray(X)
        return normalize(dense.astype(np.float32, copy=False))


def combine_blocks(blocks: Sequence[Any], *, svd_components: int = 100, seed: int = 0) -> np.ndarray:
    """Normalise each block and concatenate them with equal weight.

    ``blocks``: arrays (dense or sparse) of shape ``(n, d_i)`` for the same ``n``
    products. Returns dense ``float32`` ``(n, sum d_i')`` whose rows have norm 1
    (or less, for products missing a modality).
    """
    normalised = [BlockNormalizer(svd_components, random_state=seed).fit_transform(block) for block in blocks]
    return np.hstack(normalised) / np.float32(np.sqrt(len(normalised)))


class TSNE2D(TransformerMixin, BaseEstimator):
    """2-D t-SNE of ``(n, d)`` points, ``float32`` ``(n, 2)`` (openTSNE, seeded).

    ``perplexity`` is capped below a third of the number of points so tiny
    samples still work; ``n_jobs=1`` because the gradient's thread pool slows
    down badly when the cores are shared. openTSNE picks Barnes-Hut below
    10,000 points: on 900 it is 5x faster than its FFT gradient.
    """

    def __init__(self, perplexity: float = 30.0, n_jobs: int = 1, random_state: int | None = 0):
        self.perplexity = perplexity
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: Any = None) -> TSNE2D:
        """Map ``X`` ``(n, d)`` to 2-D, kept as ``embedding_`` (openTSNE's, which :meth:`transform` extends)."""
        from openTSNE import TSNE

        perplexity = min(self.perplexity, (len(X) - 1) / 3)
        # the PCA initialisation divides by the spread of the first axis: NaN for points all alike (products
        # whose texts are all the same), which failed the whole study in KMeans ("Input X contains NaN")
        initialization = "pca" if np.ptp(X, axis=0).any() else "random"
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            initialization=initialization,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        self.embedding_ = tsne.fit(np.asarray(X, dtype=np.float64))
        return self

    def fit_transform(self, X: np.ndarray, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``float32`` ``(n, 2)``: the map :meth:`fit` makes of ``X`` ``(n, d)``."""
        return np.asarray(self.fit(X).embedding_, dtype=np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new points in the fitted map (optimising only their positions)."""
        return np.asarray(self.embedding_.transform(np.asarray(X, dtype=np.float64)), dtype=np.float32)


class UMAPReducer(TransformerMixin, BaseEstimator):
    """UMAP of ``(n, d)`` points to ``float32`` ``(n, n_components)`` (umap-learn, seeded, one thread).

    ``min_dist=0`` lets each group contract to a tight blob, which suits KMeans
    (UMAP's documented setting for clustering); ``n_neighbors=30`` keeps the
    neighbourhoods well under a category (~130 products on Flipkart and Rakuten;
    on fashion, with 30-80 imbalanced classes, many small, ``pca+knn`` does better). The exact
    nearest neighbours (scikit-learn, brute force: a BLAS product) are passed
    in, faster on a few thousand points than umap's per-pair numba metric, and
    ``n_neighbors`` and ``n_components`` are capped for tiny samples.
    ``n_epochs=None`` keeps umap's own schedule (500 epochs below 10,000 points):
    200 saved 40% of the time with the same median ARI on Flipkart and Rakuten,
    but a wider spread over seeds (Flipkart 0.74-0.79 instead of 0.76-0.78).
    Like :class:`KNNSmoother`, it only offers ``fit_transform`` here.
    """

    def __init__(
        self,
        n_neighbors: int = 30,
        n_components: int = 10,
        min_dist: float = 0.0,
        metric: str = "cosine",
        n_epochs: int | None = None,
        random_state: int | None = 0,
    ):
        self.n_neighbors = n_neighbors
        self.n_components = n_components
        self.min_dist = min_dist
        self.metric = metric
        self.n_epochs = n_epochs
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: Any = None) -> UMAPReducer:
        """Nothing: the map is made by :meth:`fit_transform` (a pipeline's ``fit`` calls this one)."""
        return self

    def fit_transform(self, X: np.ndarray, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``float32`` ``(n, n_components)`` (fewer components for under ``n_components + 2`` points) of ``X``
        ``(n, d)``."""
        import warnings

        from sklearn.neighbors import NearestNeighbors
        from umap import UMAP

        X = np.asarray(X, dtype=np.float32)
        n_neighbors = max(2, min(self.n_neighbors, len(X) - 1))
        distances, indices = (
            NearestNeighbors(n_neighbors=n_neighbors, metric=self.metric, algorithm="brute").fit(X).kneighbors(X)
        )
        umap = UMAP(
            n_neighbors=n_neighbors,
            n_components=max(1, min(self.n_components, len(X) - 2)),
            min_dist=self.min_dist,
            metric=self.metric,
            n_epochs=self.n_epochs,
            precomputed_knn=(indices, distances, None),
            random_state=self.random_state,
            n_jobs=1,
        )
        with warnings.catch_warnings():  # "no search index: transform() unavailable": only fit_transform is offered
            warnings.simplefilter("ignore", UserWarning)
            return np.asarray(umap.fit_transform(X), dtype=np.float32)


#: products of the random sample UMAP is compiled on
WARM_UP_POINTS = 60


@functools.cache
def warm_up_umap() -> None:
    """Run :class:`UMAPReducer` once in this process on a small random sample.

    UMAP's numba functions compile on the first call of each process: on 2 shared cores a 900-product UMAP took
    100 s the first time and 17-20 s after, so the first UMAP run of a study was timed at five times the others.
    Called before timing a UMAP run, it leaves that one-off cost out of the run's seconds.
    """
    sample = np.random.default_rng(0).normal(size=(WARM_UP_POINTS, 16)).astype(np.float32)
    UMAPReducer().fit_transform(sample)


class KNNSmoother(TransformerMixin, BaseEstimator):
    """Average each point with its ``n_neighbors`` nearest neighbours, ``steps`` times; re-normalise rows.

    Input ``(n, d)``, output ``float32`` ``(n, d)`` with unit rows (rows of one dimension, which would all be -1 or 1,
    are left as they are). The graph is
    the symmetrised k-nearest-neighbour graph of the input (self included), each
    row divided by its degree: one step replaces a point by the mean of its
    neighbourhood. This is transductive (a new point would need the whole graph),
    so it only offers ``fit_transform``. ``n_neighbors`` is capped at a third of
    the points (as :class:`TSNE2D`'s perplexity): on a dozen points, neighbourhoods
    of 10 averaged them all into nearly the same mean, whatever their groups.
    """

    def __init__(self, n_neighbors: int = 10, steps: int = 2):
        self.n_neighbors = n_neighbors
        self.steps = steps

    def fit(self, X: np.ndarray, y: Any = None) -> KNNSmoother:
        """Nothing: the smoothing is :meth:`fit_transform`'s (a pipeline's ``fit`` calls this one)."""
        return self

    def fit_transform(self, X: np.ndarray, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``float32`` ``(n, d)``: ``X`` ``(n, d)`` smoothed ``steps`` times, rows of norm 1 (when ``d > 1``)."""
        from sklearn.neighbors import kneighbors_graph

        X = np.asarray(X, dtype=np.float32)
        graph = kneighbors_graph(X, max(1, min(self.n_neighbors, len(X) // 3)), include_self=True)
        graph = ((graph + graph.T) > 0).astype(np.float32)
        walk = sp.diags(1.0 / np.asarray(graph.sum(axis=1)).ravel()) @ graph
        for _ in range(self.steps):
            X = walk @ X
        # a unit row of one dimension is -1 or 1: --components 1 made every product one of two points, KMeans split
        # them into k clusters anyhow, and scored a silhouette of 1.000
        return normalize(X) if X.shape[1] > 1 else X


def make_reduction(name: str, shape: tuple[int, int], *, n_components: int = 50, seed: int = 0) -> Pipeline:
    """Build the reduction ``name`` for dense input of ``shape`` ``(n_samples, n_features)``.

    Call ``fit_transform`` on the combined blocks; ``pca`` returns ``(n, min(n_components, n_samples,
    n_features))``,
    ``pca+knn`` the same shape with unit rows, ``tsne`` ``(n, 2)``, ``umap`` ``(n, 10)``
    (fewer for tiny samples). ``n_components`` only applies to the PCA. Raises ``ValueError`` for a name not in
    :data:`~prodcat.explore.choices.REDUCTIONS`.
    """
    n_samples, n_features = shape
    pca = PCA(n_components=min(n_components, n_samples, n_features), random_state=seed)
    if name == "pca":
        return make_pipeline(pca)
    if name == "pca+knn":
        return make_pipeline(pca, KNNSmoother())
    if name == "tsne":
        # Euclidean distance between unit rows is a monotone function of their cosine, and stays defined
        # for the all-zero row of a product none of whose words is in the vocabulary
        return make_pipeline(Normalizer(), TSNE2D(random_state=seed))
    if name == "umap":
        return make_pipeline(UMAPReducer(random_state=seed))
    raise ValueError(f"unknown reduction {name!r}; known: {', '.join(REDUCTIONS)}")
