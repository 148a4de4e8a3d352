"""photo_text_tfidf: the OCR of the photo as a registered image extractor, trained and predicted with in a config."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image, ImageDraw, ImageFont

from prodcat.cli import main
from prodcat.config import Config, load_config
from prodcat.evaluate.explain import ExplainSettings, explain
from prodcat.evaluate.robustness import Perturbation, gaussian_blur
from prodcat.features.base import NothingToLearn, make_extractor
from prodcat.image.ocr import PhotoText, PhotoTextTfidf
from prodcat.models.classifier import ProductClassifier, TrainingRefused
from prodcat.models.heads import ModalityHead
from prodcat.predict import Predictor

#: the word drawn on each category's cover
COVER_WORDS = {"Kitchen": "COFFEE", "Watches": "WATCH", "Toys": "TRAIN"}


def cover(text: str, size: tuple[int, int] = (640, 200)) -> Image.Image:
    """A white cover with ``text`` in black, large enough for the OCR to read."""
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).text((30, 60), text, fill="black", font=ImageFont.load_default(size=64))
    return img


def jpeg(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh feature cache: every photo is read by the OCR once in the test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("PRODCAT_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each call of the OCR engine, recorded (the engine still runs): one entry per photo read."""
    calls: list[int] = []
    real_engine = PhotoText._engine

    def counted_engine(self: PhotoText) -> Callable[..., Any]:
        engine = real_engine(self)

        def run(image: np.ndarray) -> Any:
            calls.append(1)
            return engine(image)

        return run

    monkeypatch.setattr(PhotoText, "_engine", counted_engine)
    return calls


def photo_frame(folder: Path, images: dict[str, Image.Image | None]) -> pd.DataFrame:
    """Products whose photos (``None``: no photo) are saved as JPEG files in ``folder``, no text."""
    paths = []
    for product_id, img in images.items():
        path = None if img is None else folder / f"{product_id}.jpg"
        if path is not None:
            path.write_bytes(jpeg(img))
        paths.append(None if path is None else str(path))
    return pd.DataFrame({"product_id": list(images), "title": "", "description": "", "image": paths})


def test_reads_the_drawn_word_and_gives_a_photo_without_text_a_zero_row(
    tmp_path: Path, cache_dir: Path, engine_calls: list[int]
) -> None:
    frame = photo_frame(tmp_path, {"a": cover("COFFEE"), "b": cover("COFFEE MUG"), "blank": cover(""), "none": None})
    extractor = make_extractor("photo_text_tfidf", analyzer="word", ngram_range=(1, 1), min_df=1, progress=False)
    assert isinstance(extractor, PhotoTextTfidf) and extractor.modality == "image"
    X = extractor.fit_transform(frame)
    assert "coffee" in set(extractor.get_feature_names_out()), "the word on the photos is in the vocabulary"
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1))).ravel()
    np.testing.assert_allclose(norms, [1, 1, 0, 0], atol=1e-6)  # rows L2-normalised; no text, no photo: zeros
    # a photo without text is a photo: the head reads it with the other photo features beside it
    np.testing.assert_array_equal(extractor.available(frame), [True, True, True, False])
    assert len(engine_calls) == 3  # the three photos, once each

    warm = make_extractor("photo_text_tfidf", analyzer="word", ngram_range=(1, 1), min_df=1, progress=False)
    again = warm.fit_transform(frame)
    assert len(engine_calls) == 3, "the second extractor reads the texts from the cache, not the photos"
    np.testing.assert_allclose(again.toarray(), X.toarray())


def test_settings_changed_after_the_ocr_was_built_reach_it(tmp_path: Path, cache_dir: Path) -> None:
    """set_params on the extractor reaches its OCR, and a new thread count its engine: the OCR was built once with
    the settings of its first use, and kept them."""
    extractor = make_extractor("photo_text_tfidf", progress=False)
    extractor.fit(photo_frame(tmp_path, {"a": cover("COFFEE"), "b": cover("COFFEE MUG")}))
    engine = extractor.reader()._engine()
    extractor.set_params(min_score=0.99, min_chars=5, progress=True)
    reader = extractor.reader()
    assert (reader.min_score, reader.min_chars, reader.progress) == (0.99, 5, True)
    assert reader._engine() is engine, "the engine is kept while its thread count is"
    extractor.set_params(threads=1)
    assert extractor.reader()._engine() is not engine


def test_a_cache_dir_set_after_a_read_disk_memory_cache_is_the_one_read(
    tmp_path: Path, cache_dir: Path, engine_calls: list[int]
) -> None:
    """use_memory_cache(read_disk=True) kept the disk cache of the cache_dir of that moment: one set later
    (set_params, or a config through the extractor) was never read, every photo cached there read again."""
    frame = photo_frame(tmp_path, {"a": cover("COFFEE")})
    shared = str(tmp_path / "shared")
    texts = make_extractor("photo_text_tfidf", cache_dir=shared, progress=False).photo_texts(frame)
    extractor = make_extractor("photo_text_tfidf", progress=False)
    extractor.use_memory_cache(10, read_disk=True)
    extractor.set_params(cache_dir=shared)
    assert extractor.photo_texts(frame) == texts
    assert len(engine_calls) == 1, "the photo's text is read from the cache_dir set, not by the OCR again"


def test_a_catalogue_without_text_on_its_photos_is_refused_by_name(tmp_path: Path, cache_dir: Path) -> None:
    frame = photo_frame(tmp_path, {"a": cover(""), "b": cover("", (300, 300))})
    with pytest.raises(NothingToLearn, match="photo_text_tfidf: OCR read no text on the 2 products' photos"):
        make_extractor("photo_text_tfidf", progress=False).fit(frame)


def test_an_invalid_parameter_is_not_reported_as_photos_without_text(tmp_path: Path, cache_dir: Path) -> None:
    frame = photo_frame(tmp_path, {"a": cover("COFFEE")})
    extractor = make_extractor("photo_text_tfidf", ngram_range=(4, 2), progress=False)
    with pytest.raises(ValueError, match="lower boundary larger than the upper boundary") as refusal:
        extractor.fit(frame)
    assert "OCR read no text" not in str(refusal.value)
    assert not isinstance(refusal.value, NothingToLearn)  # a head would leave the extractor out, as if no text


#: each category's shape and colour, drawn on photos with nothing written on them, as most of Flipkart's (watches,
#: towels)
PLAIN_SHAPES = {"Kitchen": ("ellipse", "red"), "Watches": ("rectangle", "green"), "Toys": ("polygon", "blue")}


def plain_photo(shape: str, colour: str, size: int) -> Image.Image:
    """``shape`` (an ImageDraw method) in ``colour`` on white, ``size`` pixels across."""
    img = Image.new("RGB", (224, 224), "white")
    box = [112 - size // 2, 112 - size // 2, 112 + size // 2, 112 + size // 2]
    points = [(box[0], box[3]), (112, box[1]), (box[2], box[3])]  # a polygon: a triangle in the box
    getattr(ImageDraw.Draw(img), shape)(points if shape == "polygon" else box, fill=colour)
    return img


def plain_catalogue(folder: Path, sizes: range = range(100, 180, 20)) -> pd.DataFrame:
    """Products of each category, one a size: a photo of its shape, a title naming the category."""
    images = {
        f"{category}-{size}": plain_photo(shape, colour, size)
        for category, (shape, colour) in PLAIN_SHAPES.items()
        for size in sizes
    }
    frame = photo_frame(folder, images)
    categories = [product_id.split("-")[0] for product_id in frame["product_id"]]
    return frame.assign(title=[f"item {category.lower()}" for category in categories], category=categories)


@pytest.fixture(scope="module")
def plain_ocr_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The OCR's cache of this module's :func:`plain_catalogue` photos: each read once (about a second a photo)."""
    return str(tmp_path_factory.mktemp("plain-ocr-cache"))


def image_head_config(ocr_cache: str, *features: str) -> Config:
    """A config of one image head reading ``features``: the OCR's cache ``ocr_cache``, Lite0's the usual one."""
    params = {"photo_text_tfidf": {"cache_dir": ocr_cache}}
    head = {
        "name": "image",
        "modality": "image",
        "features": [{"name": name, "params": {"progress": False, **params.get(name, {})}} for name in features],
        "classifier": "logreg",
        "C": 10.0,
    }
    return Config.model_validate({"inner_folds": 2, "heads": [head]})


def test_lite0_and_ocr_in_one_head_train_on_lite0_alone_when_no_photo_has_text(
    tmp_path: Path, plain_ocr_cache: str, engine_calls: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    """A catalogue, a --sample or a fold whose photos carry no text: the head trains and predicts as Lite0 alone."""
    frame = plain_catalogue(tmp_path).assign(title="")
    model = ProductClassifier(image_head_config(plain_ocr_cache, "effnet_lite0", "photo_text_tfidf"))
    with caplog.at_level(logging.WARNING, logger="prodcat"):
        model.fit(frame)
    assert (
        "head image trained without an extractor: photo_text_tfidf: OCR read no text on the 12 products' photos"
        in caplog.text
    )
    assert [extractor.name for extractor in model.heads_["image"].extractors_] == ["effnet_lite0"]

    (tmp_path / "new").mkdir()
    new = plain_catalogue(tmp_path / "new", range(130, 131))  # a size of each shape not trained on
    read_in_training = len(engine_calls)
    assert list(model.predict(new)) == list(PLAIN_SHAPES)
    assert len(engine_calls) == read_in_training, "the OCR, left out, is not run on the photos predicted"
    lite0_alone = ProductClassifier(image_head_config(plain_ocr_cache, "effnet_lite0")).fit(frame)
    np.testing.assert_allclose(model.predict_proba(new), lite0_alone.predict_proba(new))


def test_an_ocr_head_on_photos_without_text_is_left_out_and_the_text_head_trains(
    tmp_path: Path, plain_ocr_cache: str, caplog: pytest.LogCaptureFixture
) -> None:
    plain_catalogue(tmp_path).to_csv(tmp_path / "products.csv", index=False)
    (tmp_path / "config.yaml").write_text(
        "inner_folds: 2\nheads:\n"
        "  - {name: t, modality: text, features: [{name: tfidf}], classifier: linearsvc, scale: false}\n"
        "  - {name: ocr, modality: image, features: [{name: photo_text_tfidf, params: {cache_dir: "
        f"'{plain_ocr_cache}'}}}}]}}\n"
    )
    arguments = ["train", str(tmp_path / "products.csv"), "--config", str(tmp_path / "config.yaml")]
    assert main([*arguments, "--out", str(tmp_path / "model")]) == 0
    assert "head ocr skipped: photo_text_tfidf: OCR read no text on the 12 products' photos" in caplog.text
    predictor = Predictor.load(tmp_path / "model")
    assert list(predictor.model.heads_) == ["t"]
    [prediction] = predictor.predict(pd.DataFrame([{"title": "item watches"}]))
    assert prediction.category == "Watches"


#: the refusal of a config of an OCR head alone on photos without text
OCR_ONLY_REFUSAL = (
    "photo_text_tfidf: OCR read no text on the {n} products' photos, nothing to learn a vocabulary from; leave this "
    "extractor out for this catalogue"
)


def test_a_config_of_an_ocr_head_alone_is_refused_naming_the_extractor(tmp_path: Path, plain_ocr_cache: str) -> None:
    model = ProductClassifier(image_head_config(plain_ocr_cache, "photo_text_tfidf"))
    with pytest.raises(TrainingRefused, match=re.escape(OCR_ONLY_REFUSAL.format(n=12))) as refused:
        model.fit(plain_catalogue(tmp_path))
    assert isinstance(refused.value.__cause__, NothingToLearn)


def test_the_command_line_says_an_ocr_head_alone_cannot_train_in_one_line(
    tmp_path: Path, plain_ocr_cache: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """train, cv and audit --labels say in one line, exit 2, that a config of an OCR head alone finds nothing to learn
    on photos without text: train and cv ended in a traceback (exit 1), the audit too. Said once: not warned of too
    as a head skipped ('head H skipped: ...', the same words)."""
    plain_catalogue(tmp_path).to_csv(tmp_path / "products.csv", index=False)
    config = image_head_config(plain_ocr_cache, "photo_text_tfidf")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json")))
    common = [str(tmp_path / "products.csv"), "--config", str(tmp_path / "config.yaml")]
    assert main(["train", *common, "--out", str(tmp_path / "model")]) == 2
    said = capsys.readouterr().err
    assert f"error: cannot train: {OCR_ONLY_REFUSAL.format(n=12)}\n" in said and "Traceback" not in said
    assert "skipped" not in caplog.text
    assert not (tmp_path / "model").exists()
    assert main(["cv", *common, "--folds", "2", "--report", str(tmp_path / "report")]) == 2
    said = capsys.readouterr().err
    refusal = OCR_ONLY_REFUSAL.format(n=6)
    assert f"error: cannot cross-validate: the training part of fold 0 (of folds 0 to 1): {refusal}\n" in said
    assert main(["audit", *common, "--labels", "--folds", "2", "--report", str(tmp_path / "audit")]) == 0
    assert f"label audit skipped: the training part of fold 0 (of folds 0 to 1): {refusal}" in capsys.readouterr().out


def test_without_rapidocr_train_names_it_before_fitting_any_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # not installed, whatever this machine has
    fitted_heads: list[ModalityHead] = []
    monkeypatch.setattr(ModalityHead, "fit_extractors", lambda head, frame: fitted_heads.append(head))
    frame = photo_frame(
        tmp_path, {f"{category}-{i}": cover(word) for category, word in COVER_WORDS.items() for i in (0, 1)}
    )
    frame.assign(title="a thing", category=[pid.split("-")[0] for pid in frame["product_id"]]).to_csv(
        tmp_path / "products.csv", index=False
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        "inner_folds: 2\nheads:\n  - {name: t, modality: text, features: [{name: tfidf}]}\n"
        "  - {name: ocr, modality: image, features: [{name: photo_text_tfidf}]}\n"
    )
    assert main(["train", str(tmp_path / "products.csv"), "--config", str(config), "--out", str(tmp_path / "m")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "error: cannot train: head ocr: photo_text_tfidf needs rapidocr, a dependency of prodcat "
            "(pip install 'rapidocr==3.10.0')"
        )
    )
    assert not fitted_heads


def test_the_config_file_is_the_default_plus_an_ocr_head() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "with-photo-text.yaml")
    *defaults, ocr = config.heads
    assert config.model_copy(update={"heads": defaults}).model_dump() == Config().model_dump()
    assert (ocr.modality, [f.name for f in ocr.features]) == ("image", ["photo_text_tfidf"])


@pytest.fixture(scope="module")
def ocr_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained through ``prodcat train --config``: a TF-IDF text head and an OCR head (its cache in the
    test's folder), 6 products per category, each with its category's cover (one photo a category: three read)."""
    tmp_path = tmp_path_factory.mktemp("ocr-model")
    covers = {category: tmp_path / f"{category}.jpg" for category in COVER_WORDS}
    for category, path in covers.items():
        path.write_bytes(jpeg(cover(COVER_WORDS[category])))
    rows = [
        (f"{category}-{i}", f"item {category.lower()} {i}", "", str(covers[category]), category)
        for category in COVER_WORDS
        for i in range(6)
    ]
    pd.DataFrame(rows, columns=["product_id", "title", "description", "image", "category"]).to_csv(
        tmp_path / "train.csv", index=False
    )
    linear = {"C": 10.0, "scale": False}
    config = {
        "inner_folds": 3,
        "early": {"classifier": "logreg", **linear},
        "heads": [
            {"name": "text_tfidf", "modality": "text", "features": [{"name": "tfidf"}], "classifier": "linearsvc"}
            | linear,
            {
                "name": "image_photo_text",
                "modality": "image",
                "features": [{"name": "photo_text_tfidf", "params": {"min_df": 1, "cache_dir": str(tmp_path / "c")}}],
                "classifier": "logreg",
            }
            | linear,
        ],
    }
    (tmp_path / "ocr.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "model"
    assert main(["train", str(tmp_path / "train.csv"), "--config", str(tmp_path / "ocr.yaml"), "--out", str(out)]) == 0
    return out


def test_a_config_with_an_ocr_head_trains_and_predicts_from_the_photo_text(
    ocr_bundle: Path, tmp_path: Path, engine_calls: list[int]
) -> None:
    predictor = Predictor.load(ocr_bundle)
    assert "image_photo_text" in predictor.model.heads_
    # new photos, text only on them (no title): a path and the bytes of another size
    (tmp_path / "new.jpg").write_bytes(jpeg(cover("WATCH", (500, 180))))
    products = [
        {"product_id": "path", "image": str(tmp_path / "new.jpg")},
        {"product_id": "bytes", "image": jpeg(cover("TRAIN", (700, 240)))},
    ]
    predictions = predictor.predict(pd.DataFrame(products))
    assert [p.category for p in predictions] == ["Watches", "Toys"]
    assert all(p.modalities_used == ["image"] for p in predictions)
    assert len(engine_calls) == 2


def test_explaining_a_photo_reads_its_text_once_not_once_per_occluded_square(
    ocr_bundle: Path, engine_calls: list[int]
) -> None:
    predictor = Predictor.load(ocr_bundle)
    product = {"product_id": "p", "title": "", "description": "", "image": jpeg(cover("COFFEE", (600, 220)))}
    explanation = explain(predictor, product, ExplainSettings(grid=5, patch_cells=2))
    assert explanation.prediction.category == "Kitchen"
    assert explanation.pixels is not None  # the 16 squares predicted, their text that of the photo as given
    assert len(engine_calls) == 1
    # outside an explanation a copy is read for itself
    predictor.predict(pd.DataFrame([{"image": explanation.pixels.photo.copy()}]))
    assert len(engine_calls) == 2


def test_robustness_reads_the_perturbed_photos_text_in_memory_only(ocr_bundle: Path, engine_calls: list[int]) -> None:
    predictor = Predictor.load(ocr_bundle)
    predictor.model.set_memory_cache(100, read_disk=True)  # as prodcat robustness does
    on_disk = predictor.model.heads_["image_photo_text"].extractors_[0].reader().disk_cache()
    before = len(on_disk)
    frame = pd.DataFrame([{"product_id": "p", "image": jpeg(cover("WATCH", (600, 220)))}])
    blurred = Perturbation("blur", "blur", "photo blurred", image_transform=lambda img, rng: gaussian_blur(img, rng, 1))
    for _ in range(2):
        assert predictor.predict(blurred.apply(frame)[0])[0].category == "Watches"
    assert len(engine_calls) == 1, "the perturbed photo is read once, then from memory"
    assert len(on_disk) == before, "a perturbed photo's text is not written to the disk cache"
