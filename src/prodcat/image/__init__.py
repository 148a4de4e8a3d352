"""Product photos: safe decoding (:mod:`.decode`), quality and duplicates (:mod:`.quality`),
feature extractors ``effnet_lite0``, ``color_hist``, ``bovw_sift``, ``bovw_orb``
(:mod:`.features`), augmentation and test-time views (:mod:`.augment`), OCR (:mod:`.ocr`), and the photo types
this installation decodes (:mod:`.formats`)."""
