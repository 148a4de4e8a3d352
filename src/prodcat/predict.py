"""The Predictor: a verified bundle loaded once, answering for one product or many.

The CLI, the REST API and batch scoring all call :meth:`Predictor.predict`;
there is no second implementation of preprocessing anywhere.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import sklearn
from sklearn.utils import check_scalar

from prodcat.bundle import MANIFEST, BundleError, load_bundle
from prodcat.catalog.schema import is_missing, is_readable
from prodcat.models.classifier import ProductClassifier, product_frame


@dataclass
class Prediction:
    """The answer for one product."""

    product_id: str
    category: str
    #: the probability of ``category``, from 0 to 1
    confidence: float
    #: ``auto`` (accept without review) or ``review`` (send to a human)
    decision: str
    #: the ``k`` most probable categories, most probable first, ``[{category, probability}, ...]``; the probabilities
    #: of all the model's categories sum to 1
    top_k: list[dict[str, Any]] = field(default_factory=list)
    #: the modalities the product was classified from, ``["text", "image"]``; ``[]``: none (answered the
    #: training categories' frequencies)
    modalities_used: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (``top_k`` a list of dicts), as the API and the batch tables write them."""
        return asdict(self)


#: products whose features :meth:`Predictor.predict` computes together: about 0.1 MB a product (a long
#: description's TF-IDF row holds thousands of n-grams, copied as the blocks are stacked), so a whole
#: catalogue at once took GBs (Flipkart: 1.2 GB for 10,000 products)
PREDICT_CHUNK = 1000


class PredictorLike(Protocol):
    """What the API and :func:`prodcat.evaluate.explain.explain` need of :class:`Predictor`, read only: its labels
    and version are properties (an attribute declared here would ask them to be settable, refusing a Predictor)."""

    @property
    def labels(self) -> list[str]: ...
    @property
    def manifest(self) -> dict[str, Any]: ...
    @property
    def version(self) -> str: ...

    def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Any]: ...


class Predictor:
    """Loads a bundle once; thread-safe for concurrent ``predict`` calls (the model is read-only)."""

    def __init__(self, model: ProductClassifier, manifest: dict[str, Any], progress: bool = False):
        self.model = model
        self.manifest = manifest
        # Per-call progress bars would print one line per request in a server.
        model.set_progress(progress)

    @classmethod
    def load(cls, bundle_dir: str | os.PathLike[str], progress: bool = False) -> Predictor:
        """Verify and load a bundle; raises :class:`prodcat.bundle.BundleError` if it was tampered with, or if its
        manifest does not describe its model (:func:`manifest_disagreement`)."""
        model, manifest = load_bundle(bundle_dir)
        if disagreement := manifest_disagreement(model, manifest):
            raise BundleError(
                f"bundle {bundle_dir}: {disagreement}; its {MANIFEST} was edited or is another model's: refusing to "
                "load it (restore that file, or retrain)"
            )
        return cls(model, manifest, progress)

    @property
    def labels(self) -> list[str]:
        """The model's categories as text, sorted: the ``category`` a :class:`Prediction` may hold."""
        return [str(c) for c in self.model.categories_]

    @property
    def version(self) -> str:
        """The bundle's version as its manifest records it: the first 12 hex digits of its model file's SHA-256
        (``""`` if it records none)."""
        return str(self.manifest.get("version", ""))

    @property
    def threshold(self) -> float:
        """The confidence, a probability in [0, 1], from which a prediction is ``auto``; just above 1 when the
        model auto-accepts nothing."""
        return float(self.model.policy_.threshold_)

    def predict(self, frame: pd.DataFrame | Sequence[Mapping[str, Any]], top_k: int = 5) -> list[Prediction]:
        """Predict every product of a canonical frame, or of a list of dicts, one a product, of the same fields
        (``product_id``, ``title``, ``description``, ``image``; missing ones are treated as empty), read as the
        model reads them (:func:`~prodcat.models.classifier.product_frame`): one :class:`Prediction` per product, in
        their order. For a single product, see :meth:`predict_one`.

        The ``image`` cell may be a path, raw ``bytes`` or a ``PIL.Image.Image``. The products are predicted
        :data:`PREDICT_CHUNK` at a time, so memory does not grow with the frame (beyond the predictions).

        Raises:
            ValueError: ``top_k`` below 1; products of none of the fields ``title``, ``description``, ``image``.
            TypeError: ``top_k`` not an integer; ``frame`` neither a DataFrame nor a list of dicts.
        """
        check_scalar(top_k, "top_k", numbers.Integral, min_val=1)
        frame = product_frame(frame, self.model.modalities_)
        return [
            prediction
            for start in range(0, len(frame), PREDICT_CHUNK)
            for prediction in self._predict_chunk(frame.iloc[start : start + PREDICT_CHUNK], top_k)
        ]

    def _predict_chunk(self, frame: pd.DataFrame, top_k: int) -> list[Prediction]:
        # the features come from our own extractors: skip sklearn's per-call input checks,
        # a large share of the cost of predicting one product
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            details = self.model.predict_details(frame)
        proba = details.proba
        order = np.argsort(-proba, axis=1)[:, :top_k]
        decisions = self.model.policy_.decide(proba.max(axis=1))
        classes = self.model.categories_
        return [
            Prediction(
                product_id=str(frame["product_id"].iat[i]),
                category=str(classes[order[i, 0]]),
                confidence=float(proba[i, order[i, 0]]),
                decision=str(decisions[i]),
                top_k=[{"category": str(classes[j]), "probability": float(proba[i, j])} for j in order[i]],
                modalities_used=details.modalities_used[i],
            )
            for i in range(len(frame))
        ]

    def warm_up(self) -> None:
        """Load every lazily loaded model (sentence encoders, ONNX session) with one dummy product,
        so the first real request does not pay for it."""
        import io

        from PIL import Image

        photo = io.BytesIO()
        Image.new("RGB", (32, 32), "white").save(photo, format="PNG")
        self.predict_one(title="warm-up", description="warm-up", image=photo.getvalue())

    def predict_one(
        self, title: str = "", description: str = "", image: Any = None, product_id: str = "", top_k: int = 5
    ) -> Prediction:
        """The :class:`Prediction` of one product, given by its fields (see :meth:`predict`)."""
        row = {"product_id": product_id, "title": title, "description": description, "image": image}
        return self.predict(pd.DataFrame([row]), top_k=top_k)[0]


def manifest_disagreement(model: ProductClassifier, manifest: Mapping[str, Any]) -> str | None:
    """What ``manifest`` says of the fitted ``model`` that the model contradicts, or ``None``: its ``labels`` (the
    model's classes, in their order), its ``modalities`` (those the model's heads read; older bundles record none,
    and are read as reading every modality, see :func:`~prodcat.bundle.modalities_read_by_bundle`), its ``heads`` (the
    names of the model's heads, in their order) and its ``fusion`` (how it fused them: ``early``, ``late`` or
    ``stacking``, ``late`` for a model of one head). Training writes each of them from the very attribute compared
    here; a field but the labels that a manifest lacks (an older or hand-written one) is not compared.

    The manifest is not among the files a bundle hashes, yet the commands, the API and the app go by it beside the
    model: the predictions name the model's classes while the API's ``/model`` and the app's Model page list the
    manifest's labels (edited or reordered, another category at each position); modalities edited made them report
    the photos or text of a model that reads none, or miss those it reads; heads or fusion edited, the Model page
    described another model than the one predicting. Compared, not re-predicted: it is cheap.
    """
    described: dict[str, Any] = {"labels": [str(label) for label in model.categories_]}
    fitted_fields = {
        "modalities": lambda: list(model.modalities_),
        "heads": lambda: list(model.heads_),
        "fusion": lambda: model.fusion_method_,
    }
    described |= {name: fitted() for name, fitted in fitted_fields.items() if name in manifest}
    for name, fitted in described.items():
        recorded = manifest.get(name)
        if recorded == fitted:
            continue
        if not isinstance(fitted, list):
            return f"its manifest's {name} {recorded!r} is not its model's {fitted!r}"
        if not isinstance(recorded, list) or len(recorded) + len(fitted) <= 10:
            return f"its manifest's {name} {recorded!r} are not its model's {fitted!r}"
        # dozens of categories: where they part, rather than two lists to compare by eye
        pairs = zip(recorded, fitted, strict=False)  # the longer one's extra items: apart after the shorter's end
        at = next((i for i, (was, is_) in enumerate(pairs) if was != is_), min(len(recorded), len(fitted)))
        return (
            f"its manifest lists {len(recorded)} {name} and its model {len(fitted)}, first apart at #{at + 1}: "
            f"{_item(recorded, at)} in the manifest, {_item(fitted, at)} in the model"
        )
    return None


def _item(values: list[Any], position: int) -> str:
    return repr(values[position]) if position < len(values) else "none"


def why_nothing_read(model_modalities: Sequence[str], text: bool, photo: bool) -> list[str]:
    """Why a model reading ``model_modalities`` (``text``, ``image``) read nothing of a product given readable
    ``text`` (a title or description with a letter or a digit) and/or a ``photo``: a clause for each, lowercase.

    Text the model reads can still be unread: its text heads know only the terms of the products they were trained
    on, and a text holding none of them (another script, a lone accented letter) is not read, rather than answered
    from no word (see :meth:`ProductClassifier.predict_details
    <prodcat.models.classifier.ProductClassifier.predict_details>`).
    """
    reasons = []
    if text:
        reasons.append(
            "none of the words in its title and description is one the model knows (it knows only the words of the "
            "products it was trained on)"
            if "text" in model_modalities
            else "this model does not read text"
        )
    if photo:
        reasons.append(
            "its photo could not be used" if "image" in model_modalities else "this model does not read photos"
        )
    if not (text or photo):
        reasons.append("it has no title or description with a letter or a digit, and no photo")
    return reasons


#: how every reason for a product the model read nothing of begins (``prodcat predict``'s ``error``, the API's 422)
NOTHING_TO_READ = "nothing to classify"


def nothing_read_reason(model_modalities: Sequence[str], title: object, description: object, image: object) -> str:
    """What a product the model read nothing of is told, from its raw ``title``, ``description`` and ``image``
    (missing: no photo): which modalities the model reads and why it read none of the product's
    (:func:`why_nothing_read`), after :data:`NOTHING_TO_READ`. Its answer would be the class prior, from no input:
    ``prodcat predict`` writes it in the product's ``error``, the API refuses the product with it."""
    reads = " and ".join(model_modalities) or "its inputs"
    text = is_readable(title) or is_readable(description)
    why = "; ".join(why_nothing_read(model_modalities, text, photo=not is_missing(image)))
    return f"{NOTHING_TO_READ}: the model reads {reads}, and found none it could use in this product: {why}"
