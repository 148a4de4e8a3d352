"""Counts in the messages a person reads: one writing (``12,345``) on the command line, in the reports and in the
app (:func:`prodcat.formatting.count_text`)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from prodcat.catalog.audit import summary_lines, unchecked_warning
from prodcat.catalog.schema import RowIssue
from prodcat.commands import single_products_warning
from prodcat.evaluate.labelled import InTraining, unknown_categories_warning
from prodcat.formatting import count_text, counted, first_few


def test_a_count_has_thousands_separators_whatever_integer_type_holds_it() -> None:
    """A pandas sum is a numpy integer, which the app's check (``isinstance(count, int)``) wrote without them."""
    assert count_text(12_345) == count_text(np.int64(12_345)) == "12,345"
    assert count_text(7) == "7"
    assert [count_text(value) for value in ("?", True, np.bool_(True), 0.5)] == ["?", "True", "True", "0.5"]


def test_a_count_and_its_noun_agree() -> None:
    assert [counted(n, "product") for n in (0, 1, 2, np.int64(12_345))] == [
        "0 products",
        "1 product",
        "2 products",
        "12,345 products",
    ]
    assert (
        counted(1, "category", "categories") == "1 category" and counted(3, "category", "categories") == "3 categories"
    )


def test_the_warnings_on_labelled_products_the_cli_and_the_app_share_write_counts_as_the_app_does() -> None:
    """evaluate's and the app's caveats wrote '1234 of 12345 scored products' where the app writes '12,345'."""
    assert InTraining(1_234, 12_345).warning.startswith("1,234 of 12,345 products evaluated (10.0%) were in the")
    assert "whether any of these 12,345 products" in InTraining.of(None, 12_345).unchecked
    truth = ["Shoes"] * 1_500 + ["Mugs"] * 600
    assert unknown_categories_warning(truth, ["Mugs"]).startswith(
        "1,500 of 2,100 labelled products have a category the model does not know (1 category: 'Shoes' (1,500))"
    )


def test_the_command_lines_counts_have_thousands_separators(caplog: pytest.LogCaptureFixture) -> None:
    """train's, predict's, evaluate's and audit's own messages wrote '1200 row issue(s)', '1500 categories have a
    single labelled product', the audit's summary '12345 products'."""
    from prodcat.commands import _log_issues

    issues = [RowIssue(line, "title", "no title", f"p{line}") for line in range(1_200)]
    with caplog.at_level(logging.WARNING, logger="prodcat"):
        _log_issues(issues, "row issue(s) while reading shop.csv")
    assert caplog.records[0].getMessage() == "1,200 row issue(s) while reading shop.csv; first ones:"
    counts = pd.Series(1, index=[f"category {number}" for number in range(1_500)])
    assert single_products_warning(counts, "never learnt").startswith("1,500 categories have a single labelled product")
    assert unchecked_warning(2_000).startswith("2,000 products are not checked")
    summary = summary_lines(_audit_result(products=12_345))
    assert summary[0] == "12,345 products, 12,000 labelled, 1,200 loader issues"
    assert summary[1].endswith("of the 12,345 with text, 1,001 have no title, 1,001 no description")
    assert "languages, as training reads them: en 12,345" in summary


def _audit_result(products: int) -> dict:
    """The least of an audit's result :func:`summary_lines` reads, with no finding beyond the counts."""
    stats = {"missing": 1_001}
    return {
        "summary": {"products": products, "labelled": 12_000, "loader_issues": 1_200},
        "text": {
            "no_text": 0,
            "no_text_nor_photo": 0,
            "products_with_text": products,
            "title": stats,
            "description": stats,
        },
        "duplicates": {"exact": {"groups": 0, "conflicting_groups": 0}, "near": {"groups": 0, "conflicting_groups": 0}},
        "markup": {"products_with_any": 0},
        "languages": {"counts": {"en": products}, "other": {"products": 0, "counts": {}}},
        "classes": {"unsplit_separator": None, "levels": {}, "labelled_above_subcategories": {"categories": 0}},
        "images": {"skipped": True},
    }


def test_the_figures_by_modalities_count_products_with_thousands_separators(capsys: pytest.CaptureFixture) -> None:
    """evaluate's and cv's lines by modalities wrote 'n 12345' under figures written '12,345'."""
    from prodcat.commands import print_by_modalities

    print_by_modalities(
        {
            "text+image": {"n": 12345, "accuracy": 0.9, "f1_weighted": 0.8},
            "text": {"n": 980, "accuracy": 0.5, "f1_weighted": 0.25},
        }
    )
    assert capsys.readouterr().out.splitlines() == [
        "  from text+image: n 12,345  accuracy 0.9000  f1_weighted 0.8000",
        "  from text:       n 980     accuracy 0.5000  f1_weighted 0.2500",
    ]


def test_first_few_names_at_most_so_many_and_counts_the_others() -> None:
    assert first_few(["a", "b"], 3) == "a, b"
    assert first_few(["a", "b", "c"], 3) == "a, b, c"
    assert first_few([str(i) for i in range(1_504)], 3) == "0, 1, 2 and 1,501 more"
    truth = [f"Category {i}" for i in range(8)]
    assert "'Category 4' (1) and 3 more): they can only be counted wrong" in unknown_categories_warning(truth, ["Mugs"])


@pytest.mark.parametrize("count", [1, 2])
def test_predict_and_explain_say_one_product_in_the_singular(
    count: int, tiny_training, tmp_path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """predict, explain and every command reading a catalogue said '1 products (csv format)', '1 predictions written'
    and '1 explanations written'."""
    from prodcat.cli import main

    data = tmp_path / "unseen.csv"
    tiny_training.unseen.head(count).to_csv(data, index=False)
    plural = "" if count == 1 else "s"
    out = tmp_path / "predictions.csv"
    with caplog.at_level(logging.INFO, logger="prodcat"):
        assert main(["predict", str(tiny_training.bundle), str(data), "--out", str(out)]) == 0
    assert f"{data}: {count} product{plural} (csv format)" in caplog.messages
    assert f"{count} prediction{plural} written to {out} " in capsys.readouterr().out
    report = tmp_path / "explain"
    assert main(["explain", str(tiny_training.bundle), str(data), "--sample", str(count), "--report", str(report)]) == 0
    assert f"{count} explanation{plural} written to {report}" in capsys.readouterr().out


def test_the_audit_summary_and_a_batch_resume_refusal_say_one_product_in_the_singular() -> None:
    """The audit's summary said '1 products, 1 labelled, 1 loader issues' and 'photos: ... 1 products without'; a
    predict run refused to resume another input's parts said '(1 products there, ...)'."""
    from dataclasses import replace

    from prodcat.batch.job import RunState
    from prodcat.catalog.audit.command import _photo_lines

    result = _audit_result(products=1)
    result["summary"].update(labelled=1, loader_issues=1)
    assert summary_lines(result)[0] == "1 product, 1 labelled, 1 loader issue"
    assert summary_lines(_audit_result(products=2))[0] == "2 products, 12,000 labelled, 1,200 loader issues"
    photos = {"with_photo": 1, "unreadable": 0}
    assert _photo_lines(photos | {"without_photo": 1})[0] == "photos: 1 given, 1 product without, 0 unreadable"
    assert _photo_lines(photos | {"without_photo": 2})[0] == "photos: 1 given, 2 products without, 0 unreadable"
    state = RunState(4, "v1", "model", "data", total_rows=2, chunk_size=100, top_k=3)
    for rows, said in ((1, "1 product there"), (2, "2 products there")):
        earlier = replace(state, data_fingerprint="other data", total_rows=rows)
        assert state.differences(earlier) == [f"other input data ({said}, 2 now, or changed)"]
    # both counts of a refusal written alike, the one now as the one there: '12,345 products there, 12346 now'
    larger = replace(state, total_rows=12_346, chunk_size=10_000)
    earlier = replace(state, total_rows=12_345, chunk_size=5_000)
    assert larger.differences(earlier) == [
        "other input data (12,345 products there, 12,346 now, or changed)",
        "another chunk size (5,000 there, 10,000 now)",
    ]


@pytest.mark.parametrize("count", [1, 2])
def test_the_evaluation_and_robustness_reports_say_one_product_in_the_singular(
    count: int, tiny_training, tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """evaluate's page said '1 products.' and 'On the 1 products not in the model's training data', its reliability
    figure '1 products with a confidence', robustness's figure and console 'Robustness on 1 (labelled) products' and
    its page 'Every row is the same 1 labelled products'."""
    from matplotlib.figure import Figure

    from prodcat.cli import main
    from prodcat.evaluate.metrics import expected_calibration_error
    from prodcat.evaluate.report import reliability_figure

    plural = "" if count == 1 else "s"
    products = f"{count} product{plural}"
    unseen, mixed = tmp_path / "unseen.csv", tmp_path / "mixed.csv"
    tiny_training.unseen.head(count).to_csv(unseen, index=False)
    pd.concat([tiny_training.trained.head(1), tiny_training.unseen.head(count)]).to_csv(mixed, index=False)
    bundle = str(tiny_training.bundle)
    assert main(["evaluate", bundle, str(unseen), "--report", str(tmp_path / "evaluation")]) == 0
    assert f"<p>{products}.</p>" in (tmp_path / "evaluation" / "report.html").read_text(encoding="utf-8")
    assert main(["evaluate", bundle, str(mixed), "--report", str(tmp_path / "mixed")]) == 0
    page = (tmp_path / "mixed" / "report.html").read_text(encoding="utf-8")
    assert f"On the {products} not in the model's training data" in page

    figure = reliability_figure(expected_calibration_error(np.full(count, 0.9), np.ones(count, dtype=bool)))
    assert figure.axes[0].get_title().endswith(f", {products} with a confidence)")
    titles, savefig = [], Figure.savefig

    def titled_savefig(figure: Figure, *args: object, **kwargs: object) -> None:
        titles.append(figure.get_suptitle())
        savefig(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", titled_savefig)
    report = ["--report", str(tmp_path / "robustness"), "--perturbations", "title_only"]
    capsys.readouterr()
    assert main(["robustness", bundle, str(unseen), *report]) == 0
    assert f"Robustness on {products}" in titles
    assert f"\nRobustness on {count} labelled product{plural}:\n" in capsys.readouterr().out
    page = (tmp_path / "robustness" / "report.html").read_text(encoding="utf-8")
    assert f"Every row is the same {count} labelled product{plural}, one perturbation at a time" in page
