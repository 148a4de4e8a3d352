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
   the dense core of their group before KMeans); ``pca+tsne`` follows the PCA
   with a 2-D t-SNE (openTSNE's FFT-accelerated gradient: about twice as fast
   as scikit-learn's Barnes-Hut on 1,000 points, and linear in their number).
   UMAP was tried on Flipkart and left out: no better ARI than t-SNE, and
   numba's compilation alone costs more than a whole warm study.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import normalize


class BlockNormalizer(TransformerMixin, BaseEstimator):
    """L2-normalise the rows of one feature block, first reducing it with TruncatedSVD if sparse.

    Input ``(n, d)`` dense or sparse; output dense ``float32`` ``(n, d')`` with
    ``d' = min(svd_components, d - 1)`` for sparse input, ``d`` otherwise.
    Rows that are all zero (a product without this modality) stay zero.
    """

    def __init__(self, svd_components: int = 100, random_state: int | None = 0):
        self.svd_components = svd_components
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> BlockNormalizer:
        self.svd_ = None
        if sp.issparse(X):
            n_components = max(1, min(self.svd_components, X.shape[1] - 1, X.shape[0] - 1))
            self.svd_ = TruncatedSVD(n_components=n_components, random_state=self.random_state).fit(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
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
    down badly when the cores are shared.
    """

    def __init__(self, perplexity: float = 30.0, n_jobs: int = 1, random_state: int | None = 0):
        self.perplexity = perplexity
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: Any = None) -> TSNE2D:
        from openTSNE import TSNE

        perplexity = min(self.perplexity, (len(X) - 1) / 3)
        tsne = TSNE(n_components=2, perplexity=perplexity, n_jobs=self.n_jobs, random_state=self.random_state)
        self.embedding_ = tsne.fit(np.asarray(X, dtype=np.float64))
        return self

    def fit_transform(self, X: np.ndarray, y: Any = None, **fit_params: Any) -> np.ndarray:
        return np.asarray(self.fit(X).embedding_, dtype=np.float32)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Place new points in the fitted map (optimising only their positions)."""
        return np.asarray(self.embedding_.transform(np.asarray(X, dtype=np.float64)), dtype=np.float32)


class KNNSmoother(TransformerMixin, BaseEstimator):
    """Average each point with its ``n_neighbors`` nearest neighbours, ``steps`` times; re-normalise rows.

    Input ``(n, d)``, output ``float32`` ``(n, d)`` with unit rows. The graph is
    the symmetrised k-nearest-neighbour graph of the input (self included), each
    row divided by its degree: one step replaces a point by the mean of its
    neighbourhood. This is transductive (a new point would need the whole graph),
    so it only offers ``fit_transform``.
    """

    def __init__(self, n_neighbors: int = 10, steps: int = 2):
        self.n_neighbors = n_neighbors
        self.steps = steps

    def fit(self, X: np.ndarray, y: Any = None) -> KNNSmoother:
        return self

    def fit_transform(self, X: np.ndarray, y: Any = None, **fit_params: Any) -> np.ndarray:
        from sklearn.neighbors import kneighbors_graph

        X = np.asarray(X, dtype=np.float32)
        graph = kneighbors_graph(X, min(self.n_neighbors, len(X) - 1), include_self=True)
        graph = ((graph + graph.T) > 0).astype(np.float32)
        walk = sp.diags(1.0 / np.asarray(graph.sum(axis=1)).ravel()) @ graph
        for _ in range(self.steps):
            X = walk @ X
        return normalize(X)


#: reduction name -> a short description (the report's legend)
REDUCTIONS: dict[str, str] = {
    "pca": "PCA (TruncatedSVD first for sparse blocks), then KMeans",
    "pca+knn": "PCA, then each product averaged with its 10 nearest neighbours (2 steps), then KMeans",
    "pca+tsne": "PCA, then 2-D t-SNE, then KMeans on the map",
}


def make_reduction(name: str, shape: tuple[int, int], *, n_components: int = 50, seed: int = 0) -> Pipeline:
    """Build the reduction ``name`` for dense input of ``shape`` ``(n_samples, n_features)``.

    Call ``fit_transform`` on the combined blocks; ``pca`` returns ``(n, n_components)``,
    ``pca+knn`` the same shape with unit rows, ``pca+tsne`` ``(n, 2)``.
    """
    n_samples, n_features = shape
    pca = PCA(n_components=min(n_components, n_samples, n_features), random_state=seed)
    if name == "pca":
        return make_pipeline(pca)
    if name == "pca+knn":
        return make_pipeline(pca, KNNSmoother())
    if name == "pca+tsne":
        return make_pipeline(pca, TSNE2D(random_state=seed))
    raise ValueError(f"unknown reduction {name!r}; known: {', '.join(REDUCTIONS)}")
