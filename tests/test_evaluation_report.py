"""``prodcat evaluate``'s figures per set of modalities the products were classified from, as ``cv``'s."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from prodcat.cli import main
from prodcat.evaluate.metrics import evaluate_predictions, wilson_interval
from prodcat.evaluate.report import by_modalities_html


def test_evaluate_tells_apart_the_products_classified_from_each_modality(tiny_training, tmp_path, capsys):
    """cv gave the figures per set of modalities the products were classified from (on its console only), evaluate
    none: its report on Rakuten did not tell the 40% classified from their photo alone from the others, nor here the
    products with nothing the model reads from those it read. Both now say them on the console, in metrics.json
    (``by_modalities``) and in report.html."""
    products = tiny_training.unseen.copy()
    products.loc[:2, ["title", "description"]] = ""  # 3 products with nothing the text model reads
    data, report = tmp_path / "products.csv", tmp_path / "report"
    products.to_csv(data, index=False)
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0

    by_modalities = json.loads((report / "metrics.json").read_text())["by_modalities"]
    assert {modalities: figures["n"] for modalities, figures in by_modalities.items()} == {"none": 3, "text": 9}
    predictions = pd.read_csv(report / "predictions.csv", keep_default_na=False)
    read = predictions[predictions["modalities_used"] == "text"]
    assert by_modalities["text"]["accuracy"] == pytest.approx((read["category"] == read["predicted"]).mean())
    assert by_modalities["none"]["accuracy"] == 0
    text = by_modalities["text"]
    assert f"  from text:       n 9       accuracy {text['accuracy']:.4f}  f1_weighted {text['f1_weighted']:.4f}" in (
        capsys.readouterr().out
    )
    page = " ".join(re.sub(r"<[^>]+>", " ", (report / "report.html").read_text()).split())
    assert (
        "By what the products were classified from classified from products accuracy F1 weighted F1 macro "
        f"none 3 0.000 0.000 0.000 text 9 {text['accuracy']:.3f}"
    ) in page


def test_the_in_sample_caveat_counts_the_products_the_figures_count(tiny_training, tmp_path, capsys):
    """evaluate's figures count every labelled product, those the model cannot score as wrong; its in-sample caveat
    must count the same ones. It said 'scored products' of them all (Rakuten: '400 of 3,490 scored products' beside
    '1,395 have no text the model can read'), and 3b017f8 then counted only those scored (36 of 42 here), unlike the
    figures it qualifies and the 'only N were not' set beside them (12). Here the 36 trained on and 12 others, 6 of
    them without text: 36 of the 48 evaluated, 12 not, as the honest figures count them."""
    products = pd.concat([tiny_training.trained, tiny_training.unseen], ignore_index=True)
    products.loc[products.index[-6:], ["title", "description"]] = ""
    data, report = tmp_path / "products.csv", tmp_path / "report"
    products.to_csv(data, index=False)
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    said = next(warning for warning in metrics["warnings"] if "training data" in warning)
    assert said.startswith("36 of 48 products evaluated (75.0%) were in the model's training data"), said
    assert "only 12 were not" in said and metrics["not_in_training"]["n"] == 12 and metrics["n"] == 48
    assert f"warning: {said}" in capsys.readouterr().out


def test_a_cv_report_names_the_configuration_its_figures_are_of(tmp_path):
    """report.html did not say which heads, fusion, calibration or target precision its figures were of (metrics.json
    alone did): the reports of two fusions read the same but for their numbers. Each now says its own."""
    from conftest import tiny_products

    data = tmp_path / "products.csv"
    tiny_products(0, 12).to_csv(data, index=False)
    heads = (
        "heads:\n"
        "  - {name: words, modality: text, features: [{name: tfidf_word, params: {min_df: 1}}],"
        " classifier: linearsvc}\n"
        "  - {name: grams, modality: text, features: [{name: tfidf_char}], C: 3, scale: false}\n"
    )
    pages = {}
    for fusion, calibration in (("late", "isotonic"), ("stacking", "temperature")):
        config = tmp_path / f"{fusion}.yaml"
        config.write_text(f"{heads}fusion: {fusion}\ncalibration: {calibration}\ntarget_precision: 0.95\n")
        report = tmp_path / fusion
        assert main(["cv", str(data), "--config", str(config), "--folds", "2", "--report", str(report)]) == 0
        pages[fusion] = " ".join(re.sub(r"<[^>]+>", " ", (report / "report.html").read_text()).split())
    for fusion, calibration in (("late", "isotonic"), ("stacking", "temperature")):
        assert (
            "head words text: tfidf_word(min_df=1) → linearsvc(C=10.0) head grams text: tfidf_char → "
            f"logreg(C=3.0, scale=False) fusion {fusion} calibration {calibration} target precision 0.95"
        ) in pages[fusion]


def test_an_evaluation_report_of_a_model_fused_by_auto_says_the_fusion_training_picked(tmp_path):
    """The report of a model trained with ``fusion: auto`` said 'auto, early fusion by ...' whichever fusion its
    training had picked (the bundle's manifest alone said it): a reader could not tell how the model fuses. It says
    both now, 'auto → late (picked in training)', and metrics.json records the fusion beside the bundle's version;
    its config stays as given (auto), to be run again."""
    from conftest import tiny_products

    trained, unseen, config = tmp_path / "trained.csv", tmp_path / "unseen.csv", tmp_path / "auto.yaml"
    tiny_products(0, 12).to_csv(trained, index=False)
    tiny_products(12, 4).to_csv(unseen, index=False)
    config.write_text(
        "heads:\n"
        "  - {name: words, modality: text, features: [{name: tfidf_word, params: {min_df: 1}}]}\n"
        "  - {name: grams, modality: text, features: [{name: tfidf_char}]}\n"
        "fusion: auto\ninner_folds: 2\n"
    )
    bundle, report = tmp_path / "model", tmp_path / "report"
    assert main(["train", str(trained), "--config", str(config), "--out", str(bundle)]) == 0
    picked = json.loads((bundle / "manifest.json").read_text())["fusion"]
    assert picked in ("early", "late")
    assert main(["evaluate", str(bundle), str(unseen), "--report", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert (metrics["config"]["fusion"], metrics["model"]["fusion"]) == ("auto", picked)
    page = " ".join(re.sub(r"<[^>]+>", " ", (report / "report.html").read_text()).split())
    [said] = re.findall(r" fusion (.*?) calibration ", page)
    assert said.startswith(f"auto → {picked} (picked in training)")
    assert ("early fusion by" in said) == (picked == "early")


def test_the_precision_among_the_auto_accepted_says_how_sure_it_is(capsys):
    """A held-out evaluation printed 'auto-accepted 88.9% at precision 0.9875' and its page 0.988, with no interval
    and no count: the reader deciding whether to switch on automatic categorisation could not tell that this was 2
    errors in 160 products, nor that a precision of 0.99 (the target) or 0.96 were as likely. The precision among
    the auto-accepted now comes with its errors and a 95% Wilson interval: in metrics.json, on the console, on the
    page. With none wrong, Wilson's lower bound is n / (n + z²); with none accepted, there is nothing to say."""
    import numpy as np
    from scipy.stats import binomtest

    from prodcat.commands import print_metrics
    from prodcat.evaluate.metrics import evaluate_predictions
    from prodcat.evaluate.report import decision_rows

    truth = np.repeat(np.array(["a", "b"], dtype=object), 100)
    predicted = truth.copy()
    predicted[[0, 1, 150]] = ["b", "b", "a"]  # 3 wrong: 2 of them confident enough to be auto-accepted
    confidence = np.full(200, 0.95)
    confidence[150] = 0.5
    confidence[181:] = 0.6  # with it, 20 sent to review
    decision = evaluate_predictions(truth, predicted, confidence, threshold=0.9)["decision"]
    assert decision["n_auto"] == 180 and decision["n_auto_wrong"] == 2
    wilson = binomtest(178, 180).proportion_ci(method="wilson")
    assert (decision["auto_precision_low"], decision["auto_precision_high"]) == pytest.approx(wilson)

    print_metrics({"decision": decision}, "Evaluation:", target_precision=0.99)
    printed = capsys.readouterr().out
    assert "  auto-accepted 90.0% at precision 0.9889 (target 0.99)\n" in printed
    assert "  auto errors   2 of 180 wrong; the precision's 95% interval 0.9604-0.9969\n" in printed
    assert decision_rows(decision, 200)[2] == [
        "precision among the auto-accepted",
        "0.989 (2 of 180 wrong; 95% interval 0.960–0.997)",
    ]

    none_wrong = evaluate_predictions(truth, truth, np.full(200, 0.95), threshold=0.9)["decision"]
    z2 = 1.959963984540054**2
    assert none_wrong["n_auto_wrong"] == 0 and none_wrong["auto_precision_high"] == 1.0
    assert none_wrong["auto_precision_low"] == pytest.approx(200 / (200 + z2))

    none_accepted = evaluate_predictions(truth, truth, np.full(200, 0.5), threshold=0.9)["decision"]
    assert decision_rows(none_accepted, 200)[2] == ["precision among the auto-accepted", "–"]


def test_evaluate_says_the_precision_its_threshold_was_set_for(tiny_training, tmp_path, capsys):
    """train and cv print 'auto-accepted 87.5% at precision 0.9873 (target 0.99)'; evaluate printed the share and the
    precision alone ('at precision 0.9875' on Flipkart's held-out 180), so its reader could not tell whether 0.9875
    met the bundle's target or missed it without opening metrics.json. It now says the target recorded with the
    bundle's config, on the honest figures too."""
    products = pd.concat([tiny_training.trained, tiny_training.unseen], ignore_index=True)
    data, report = tmp_path / "products.csv", tmp_path / "report"
    products.to_csv(data, index=False)
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    target = json.loads((report / "metrics.json").read_text())["config"]["target_precision"]
    lines = [line for line in capsys.readouterr().out.splitlines() if "auto-accepted" in line]
    assert len(lines) == 2 and all(line.endswith(f"(target {target})") for line in lines), lines


def test_an_evaluation_report_says_from_what_when_every_product_was_classified_from_the_same(tiny_training, tmp_path):
    """Flipkart's held-out 180 were all classified from text+image: the console said 'from text+image: n 180', the
    page nothing, so its reader could not tell whether the photos were read at all. The page now says it in one
    sentence (the summary above it holds the figures); products classified from several sets still get the table."""
    data, report = tmp_path / "products.csv", tmp_path / "report"
    tiny_training.unseen.to_csv(data, index=False)
    assert main(["evaluate", str(tiny_training.bundle), str(data), "--report", str(report)]) == 0
    assert json.loads((report / "metrics.json").read_text())["by_modalities"].keys() == {"text"}
    page = " ".join(re.sub(r"<[^>]+>", " ", (report / "report.html").read_text()).split())
    assert "12 products, all classified from text." in page
    assert "By what the products were classified from" not in page


def test_a_report_of_products_none_of_which_could_be_read_does_not_say_they_were_classified_from_none():
    """metrics.py groups the products with nothing read under 'none': the page said '12 products, all classified
    from none.'"""
    assert by_modalities_html({"none": {"n": 12}}) == (
        "<p>12 products, none classified: no text or photo of theirs could be read.</p>"
    )
    assert by_modalities_html({"image": {"n": 1}}) == "<p>1 product, all classified from image.</p>"


def _small_shop(flipkart_dir, path, *, few: bool) -> None:
    """A small shop's catalogue at ``path`` from Flipkart's real products: 20 of each of three categories and, with
    ``few``, the hand-typed categories of a few products each beside them: 'shoes ' (3 watches, typed apart from
    'Watches'), 'Cushions' (2), 'Gifts' (1)."""
    from prodcat.catalog.loaders import load_flipkart

    frame = load_flipkart(flipkart_dir).frame
    top = frame["category"].str.split(" > ").str[0]
    kept = [("Watches", 0, 20, "Watches"), ("Kitchen & Dining", 0, 20, "Kitchen"), ("Computers", 0, 20, "Computers")]
    if few:
        kept += [("Watches", 20, 23, "shoes "), ("Home Furnishing", 0, 2, "Cushions"), ("Baby Care", 0, 1, "Gifts")]
    parts = [frame[top == name].iloc[start:stop].assign(category=label) for name, start, stop, label in kept]
    columns = ["product_id", "title", "description", "category"]
    pd.concat(parts)[columns].to_csv(path, index=False)


def test_cv_says_its_intervals_understate_the_uncertainty_of_a_catalogue_of_small_categories(
    flipkart_dir, tmp_path, capsys
):
    """A small shop's 123 products (five categories of 1 to 3 products beside five of 12 to 32) cross-validated to
    an accuracy of 0.886 'within 0.854-0.919', its macro F1 0.545 'within 0.520-0.569': the bootstrap draws within
    each category, and a category of a few products, all wrong, hardly moves; the binomial interval of that
    accuracy is 0.818-0.931, a plain bootstrap's macro F1 0.504-0.716. cv (train and evaluate alike) now says so,
    with the accuracy's Wilson interval, on the console, in metrics.json and on the page. Here the same case, smaller:
    66 products, three categories of 20 beside three of 3, 2 and 1. Without the small categories, nothing is
    said."""
    from scipy.stats import binomtest

    data, report = tmp_path / "shop.csv", tmp_path / "cv"
    _small_shop(flipkart_dir, data, few=True)
    assert main(["cv", str(data), "--config", "fast-text", "--report", str(report)]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    predictions = pd.read_csv(report / "predictions.csv", keep_default_na=False)
    right = int((predictions["category"] == predictions["predicted"]).sum())
    low, high = binomtest(right, 66).proportion_ci(method="wilson")
    drawn_low, drawn_high = metrics["intervals"]["accuracy"]
    assert drawn_high - drawn_low < 0.75 * (high - low)  # the case: narrower than the binomial interval
    warning = (
        "the 95% intervals understate the uncertainty: drawn within each category, they hardly move where categories "
        "hold few products (3 of the 6 categories have fewer than 10, holding 6 of the 66 products); the accuracy's "
        f"binomial (Wilson) 95% interval is {low:.4f}-{high:.4f}, and macro F1, a mean over those categories too, is "
        "less certain still: more products of the small categories give firmer figures"
    )
    assert metrics["intervals_warning"] == warning
    assert capsys.readouterr().out.count(f"warning: {warning}\n") == 1
    assert "hold few products (3 of the 6 categories" in (report / "report.html").read_text()

    _small_shop(flipkart_dir, data, few=False)
    assert main(["cv", str(data), "--config", "fast-text", "--report", str(report)]) == 0
    assert "intervals_warning" not in json.loads((report / "metrics.json").read_text())
    assert "understate" not in capsys.readouterr().out


def _categories(sizes: list[int]) -> np.ndarray:
    """True categories ``c00``, ``c01``, ... holding ``sizes`` products each, in order."""
    return np.array([f"c{i:02d}" for i, size in enumerate(sizes) for _ in range(size)], dtype=object)


def test_a_near_perfect_accuracy_is_not_said_to_understate_for_holding_a_small_category() -> None:
    """1,000 products over 50 categories, one of them of 7, one error: the intervals were said to understate the
    uncertainty, compared with Wilson's width, which the percentile bootstrap is under at near-perfect accuracy
    whatever the categories: without the small category the interval was the same, 0.997-1.000, and nothing was said.
    They are compared with the same resampling done without categories now: nothing said of either."""
    truth = _categories([7] + [21] * 13 + [20] * 36)
    predicted = truth.copy()
    predicted[-1] = "c00"
    result = evaluate_predictions(truth, predicted)
    merged = np.where(truth == "c00", "c01", truth)  # no small category, the same error
    merged_predicted = merged.copy()
    merged_predicted[-1] = "c02"
    without_small = evaluate_predictions(merged, merged_predicted)
    assert result["intervals"]["accuracy"] == without_small["intervals"]["accuracy"] == [0.997, 1.0]
    assert "intervals_warning" not in result and "intervals_warning" not in without_small


def test_one_small_category_is_said_to_have_few_products_in_the_singular() -> None:
    """99 products right in five categories and the one product of a sixth wrong: drawn within categories, the
    accuracy never moves from 0.99, where resampling the products alone gives it a width; the warning said '1 of the
    6 categories have fewer than 10'."""
    truth = _categories([20, 20, 20, 20, 19, 1])
    predicted = np.where(truth == "c05", "c00", truth)
    result = evaluate_predictions(truth, predicted)
    assert result["intervals"]["accuracy"] == [0.99, 0.99]
    low, high = wilson_interval(99, 100)
    assert result["intervals_warning"] == (
        "the 95% intervals understate the uncertainty: drawn within each category, they hardly move where categories "
        "hold few products (1 of the 6 categories has fewer than 10, holding 1 of the 100 products); the accuracy's "
        f"binomial (Wilson) 95% interval is {low:.4f}-{high:.4f}, and macro F1, a mean over those categories too, is "
        "less certain still: more products of the small categories give firmer figures"
    )
