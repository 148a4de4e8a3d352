"""What every feature extractor shares: the :class:`~prodcat.features.base.Extractor` interface and the registry
that builds one by name (:mod:`.base`), the on-disk and in-memory caches of embeddings and descriptors
(:mod:`.cache`), and the ONNX exports the pretrained encoders run (:mod:`.onnx`). The extractors themselves live
with their modality, in :mod:`prodcat.text` and :mod:`prodcat.image`."""
