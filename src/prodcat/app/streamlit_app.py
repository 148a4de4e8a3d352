"""The Streamlit script of ``prodcat app``: four pages laying out what :mod:`prodcat.app.views` computes.

Run by ``prodcat app MODEL [--data CATALOGUE] [--predictions CSV]``, which calls
``streamlit run <this file> -- MODEL [--data ...] [--predictions ...]``. Predictions go through the
same :class:`~prodcat.predict.Predictor` as the CLI and the REST API.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from prodcat.app import views
from prodcat.app.command import add_app_arguments, readable_roots
from prodcat.bundle import BundleError, modalities_read_by_bundle
from prodcat.bundle import model_level as bundle_level  # `model_level` names the value in this script
from prodcat.catalog.loaders import CatalogFormatError, issues_of_the_run
from prodcat.catalog.schema import RowIssue, depth, is_readable
from prodcat.evaluate.explain import Explanation, explain
from prodcat.evaluate.explain_command import pixel_note, words_note
from prodcat.evaluate.report import reliability_figure
from prodcat.figures import figure_png
from prodcat.formatting import count_text
from prodcat.image.decode import accepted_formats
from prodcat.predict import Prediction, Predictor

#: products per page of the Data page's grid (each row decodes one photo thumbnail)
GRID_PAGE_SIZE = 20
ANY = "(any)"
#: columns of the predictions tables, in this order (those a table has)
PREDICTION_COLUMNS = (
    "product_id",
    "title",
    "given",
    "predicted",
    "confidence",
    "decision",
    "decision_threshold",  # a `prodcat cv` table's: each fold's model decides at its own
    "modalities_used",
    "top_k",
    "error",
)
#: label-noise candidates listed (each row decodes one photo thumbnail)
NOISE_ROWS = 50
#: the least confidence of those candidates last given by default (:func:`views.least_confidence_auto_accepted`)
NOISE_DEFAULT = "noise_confidence_default"
#: widgets whose value outlives a visit to another page (Streamlit forgets those of widgets it did not draw):
#: coming back to Data shows the products last filtered, to Predictions the source, the sample and the filters last
#: chosen, to Predict the product last submitted and how it was asked for
KEPT_ACROSS_PAGES = (
    "data_level",
    "data_category",
    "data_query",
    "data_photo",
    "data_page",
    "predictions_source",
    "predictions_path",
    "sample_size",
    "sample_seed",
    "filter_decision",
    "filter_category",
    "filter_confidence",
    "noise_confidence",
    "predict_title",
    "predict_description",
    "predict_specifications",
    "top_k",
    "predict_explain",
)
#: the level of the model under which the Data page's level was last shown (``None``: full paths)
DATA_LEVEL_MODEL = "data_level_model"
#: said under a loader's error naming options of the command line, which the app does not have
APP_COLUMNS_HINT = (
    "The options named are those of the `prodcat` command line: the app reads a CSV or Parquet catalogue by "
    "its canonical column names (product_id, title, description, image, category)."
)


#: a metric's value is cut to one line by Streamlit ("Video Games & C…" for the category predicted, 'Video Games &
#: Consoles > Roleplaying Games and Miniature Games'); this style wraps it onto more lines instead
WHOLE_METRICS = (
    '<style>[data-testid="stMetricValue"] * {white-space: normal !important; overflow-wrap: anywhere}</style>'
)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="prodcat app")
    add_app_arguments(parser)
    return parser.parse_args(sys.argv[1:])


#: embeddings the app keeps in memory: typed products, uploaded photos and the occluded variants of an
#: explanation are throw-away, never written to the on-disk cache (as the API's are not)
MEMORY_CACHE_ITEMS = 10_000


# Each loader is keyed on the path and its views.modification_stamp: a file rewritten or a bundle replaced
# is read again; max_entries lets go of the versions replaced.
@st.cache_resource(show_spinner="Loading the model bundle…", max_entries=1)
def load_predictor(path: str, stamp: tuple) -> Predictor:
    """The bundle's predictor, shared by every session and configured here once (never changed after): catalogue
    products read the embeddings `prodcat predict` cached on disk; typed ones stay in memory. Its progress bars
    are off (Predictor.load's default): the page has its own."""
    predictor = Predictor.load(path)
    predictor.model.set_memory_cache(MEMORY_CACHE_ITEMS, read_disk=True)
    return predictor


@st.cache_data(show_spinner="Reading the catalogue…", max_entries=4)
def load_catalogue(path: str, stamp: tuple) -> views.LoadedCatalogue:
    return views.LoadedCatalogue.read(path, stamp)


@st.cache_data(show_spinner="Looking for the model's training products among them…", max_entries=4)
def in_training(
    bundle: str,
    bundle_stamp: tuple,
    catalogue: str,
    catalogue_stamp: tuple,
    product_ids: pd.Series,
    _frame: pd.DataFrame,
    _manifest: dict[str, Any],
) -> views.InTraining:
    """:func:`views.catalogue_products_in_training`, once per bundle, catalogue and predicted products: it reads
    every photo of them. ``_frame`` and ``_manifest`` (not hashed) are those of the catalogue and bundle keyed."""
    return views.catalogue_products_in_training(product_ids, _frame, _manifest, bundle)


@st.cache_data(show_spinner=False, max_entries=10_000)
def _thumbnail(path: str, stamp: tuple) -> str | None:
    return views.thumbnail_uri(path)


def thumbnail(path: str) -> str | None:
    """The thumbnail of the photo at ``path``, made again once the file is replaced (a stat per photo shown)."""
    return _thumbnail(path, views.modification_stamp(path))


@st.cache_data(show_spinner="Reading the predictions…", max_entries=4)
def load_predictions(path: str, stamp: tuple) -> views.Predictions:
    return views.read_predictions(Path(path))


@st.cache_data(show_spinner="Reading the predictions…", max_entries=4)
def load_uploaded_predictions(data: bytes, name: str) -> views.Predictions:
    return views.read_uploaded_predictions(data, name)


def percent(share: float) -> str:
    return f"{share:.1%}"


def keep_widget_values(keys: Sequence[str]) -> None:
    """Keep these widgets' values while their page is not shown (Streamlit's documented way: a value set
    through the Session State API is not cleaned up); their widgets must then take no default value."""
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def photo_table(table: pd.DataFrame) -> None:
    """A table whose ``photo`` column holds thumbnail URIs, its rows tall enough to see them."""
    st.dataframe(
        table,
        hide_index=True,
        height="content",
        row_height=80,
        column_config={"photo": st.column_config.ImageColumn("photo", width="small")},
    )


def category_bars(values: pd.Series, title: str, *, unit: bool = False) -> None:
    """A horizontal bar per category, in the order of ``values``, each named in full (:func:`views.category_bars`)."""
    data, spec = views.category_bars(values, title, unit=unit)
    st.vega_lite_chart(data, spec, width="stretch")


def issues_expander(label: str, issues: list[RowIssue]) -> None:
    """Every issue in a table (searchable, sortable), folded under ``label`` with their count."""
    if issues:
        with st.expander(f"{len(issues):,} {label}"):
            st.dataframe(views.issue_table(issues), hide_index=True)


# ---------------------------------------------------------------------------------------------- pages
def data_page(
    catalogue: views.LoadedCatalogue | None, model_level: int | None, model_modalities: Sequence[str]
) -> None:
    st.header("Data")
    if catalogue is None:
        st.info("Give a catalogue in the sidebar (or start the app with `--data`) to explore it.")
        return
    frame = catalogue.catalog.frame
    levels = max(depth(frame["category"].dropna()), 1)  # the level selector needs it before the summary
    # the kept level's default, in place of one a catalogue of fewer levels, read since, does not have, or of one kept
    # under a model of another level (the bundle replaced on disk): the page follows the model loaded now
    model_changed = st.session_state.get(DATA_LEVEL_MODEL, model_level) != model_level
    if model_changed or st.session_state.get("data_level") not in range(1, levels + 1):
        st.session_state["data_level"] = min(model_level or levels, levels)
    st.session_state[DATA_LEVEL_MODEL] = model_level
    level = st.selectbox(
        "Category level",
        range(1, levels + 1),
        help="Categories are paths; this cuts them to their first levels (the model predicts its level).",
        key="data_level",
    )
    summary = views.catalogue_summary(frame, level)
    n = summary.products
    # two rows of three, size then completeness: six abreast cut "900 (100.0%)" to "900 (10…" on a 1400-px screen
    for row in (
        [
            ("products", f"{n:,}", None),
            ("labelled", views.count_and_share(summary.labelled, n), None),
            (f"categories (level {level})", f"{summary.categories:,}", None),
        ],
        [
            (
                "without photo file",
                views.count_and_share(summary.without_photo_file, n),
                "no photo named, or its file not found; a file that does not decode counts as a photo here "
                "(a sample predicted on the Predictions page reports it)",
            ),
            ("without title", views.count_and_share(summary.without_title, n), None),
            ("without description", views.count_and_share(summary.without_description, n), None),
        ],
    ):
        for column, (label, value, help_text) in zip(st.columns(3), row, strict=True):
            column.metric(label, value, help=help_text)
    # those `prodcat predict` lists for the loaded model: none of a field it does not read (a photo not found, for a
    # text model), each saying what it classifies the product from (the loader words them for text and photos)
    issues_expander(
        "row issue(s) while reading the catalogue", issues_of_the_run(catalogue.catalog.issues, model_modalities)
    )
    if not n:  # nothing to chart (and charts of no rows make altair warn)
        st.info("The catalogue has no product.")
        return

    balance = views.class_balance(frame, level)
    st.subheader("Class balance")
    category_bars(balance, "products")  # most frequent first

    st.subheader("Text length (characters)")
    lengths = views.text_lengths(frame)
    st.dataframe(lengths.describe().T.round(1))
    for column, field in zip(st.columns(2), ("title", "description"), strict=True):
        histogram = views.length_histogram(lengths[field])
        column.caption(views.length_caption(field, lengths[field], histogram))
        if lengths[field].any():  # every product at 0: a bar of them all says nothing the caption does not
            column.bar_chart(histogram, x_label="characters", y_label="products")

    st.subheader("Products")
    left, middle, right = st.columns([2, 2, 1])
    category = left.selectbox("Category", [ANY, *balance.index], key="data_category")
    query = middle.text_input("Title or description contains", key="data_query")
    photo = right.radio("Photo", ("any", "with", "without"), horizontal=True, key="data_photo")
    products = views.filter_catalogue(
        frame,
        level,
        category=None if category == ANY else category,
        query=query,
        photo={"any": None, "with": True, "without": False}[photo],
    )
    pages = max(math.ceil(len(products) / GRID_PAGE_SIZE), 1)
    page = st.number_input(f"Page (of {pages:,}; {len(products):,} products)", 1, pages, key="data_page")
    shown = products.iloc[(page - 1) * GRID_PAGE_SIZE : page * GRID_PAGE_SIZE]
    photo_table(views.product_grid(shown, level, thumbnail))


#: the per-category table's category column, in pixels: as wide as leaves the others on screen at 1400 px (seen in
#: Chromium: a name of 75 characters took 420 px and pushed the last two columns off it). A longer name is cut
#: there, shown whole by a double click on it
CATEGORY_WIDTH = 190

#: the per-category table's automation columns (those it has), each with its help; the percentage to 1 decimal; its
#: category (the index) at :data:`CATEGORY_WIDTH`
AUTOMATION_COLUMN_CONFIG = {
    "_index": st.column_config.TextColumn(
        "category",
        width=CATEGORY_WIDTH,
        help="A name too long for the column is cut: double-click it to read it whole.",
    ),
    **{
        name: st.column_config.NumberColumn(name, help=help_text, format="%.1f")
        if name == views.AUTOMATION_PERCENT
        else st.column_config.TextColumn(name, help=help_text)
        for name, help_text in views.AUTOMATION_COLUMNS.items()
    },
}


def model_page(manifest: dict[str, Any]) -> None:
    st.header("Model")
    st.table(views.model_overview(manifest))
    if fingerprint := views.data_fingerprint(manifest):
        # whole, wrapped, and copied whole by the block's button: a table cell cut its 64 characters at its edge
        st.caption("Training data fingerprint")
        st.code(fingerprint, language=None, wrap_lines=True)
    metrics = manifest.get("metrics") or {}
    if not metrics:
        st.info("This bundle records no training metrics.")
        return
    st.subheader("Metrics recorded at training")
    if "estimated_by" in metrics:
        st.caption(f"Estimated by {metrics['estimated_by']} on {count_text(metrics.get('n', '?'))} products.")
    st.dataframe(views.headline_table(metrics).round(4))
    levels = views.levels_table(metrics)
    if not levels.empty:
        st.caption("Per level of the category path")
        st.dataframe(levels.round(4))

    if metrics.get("decision") or metrics.get("calibration"):
        decision_section(metrics)
    per_class = views.per_class_table(metrics)
    if not per_class.empty:
        per_category_section(metrics, per_class)

    reliability = views.reliability_table(metrics)
    if not reliability.empty:
        st.subheader("Reliability diagram")
        st.caption("Accuracy per confidence bin against the diagonal of perfect calibration.")
        # the reports' figure: bins as points against the diagonal, no line drawing a trend across empty bins
        # at the report PNG's size: stretched across the wide layout, the square figure would be taller than the screen.
        # An image of our own, as st.pyplot's dpi argument puts Streamlit's deprecation notice on the page
        st.image(figure_png(reliability_figure(metrics["calibration"]), dpi=110))
        st.dataframe(reliability.round(4), hide_index=True)

    with st.expander(f"Labels ({len(manifest.get('labels', [])):,})"):
        st.write(manifest.get("labels", []))
    with st.expander("Config"):
        st.json(manifest.get("config", {}))
    with st.expander("Library versions"):
        st.json(manifest.get("libraries", {}))


def decision_section(metrics: dict[str, Any]) -> None:
    """The Model page's decision threshold, automation rate, precision among the auto-accepted (how sure it is,
    as the reports say it) and ECE."""
    st.subheader("Decision and calibration")
    for column, (label, value) in zip(st.columns(4), views.decision_metrics(metrics).items(), strict=True):
        column.metric(label, value)
    if sure := views.auto_precision_caption(metrics):
        st.caption(sure)


def per_category_section(metrics: dict[str, Any], per_class: pd.DataFrame) -> None:
    """The Model page's F1 per category, and its table (:func:`views.per_class_table`)."""
    st.subheader("Per category")
    category_bars(per_class["f1"], "F1", unit=True)  # weakest first
    if note := views.per_class_automation_note(metrics):
        st.caption(note)
    per_class_dataframe(per_class)


def per_class_dataframe(per_class: pd.DataFrame) -> None:
    """A per-category table (:func:`views.per_class_table`), its automation columns with their help."""
    st.dataframe(per_class.round(4), column_config=AUTOMATION_COLUMN_CONFIG)


#: the photo last submitted on the Predict page, ``(name, bytes)``: one per session, of at most the uploader's limit
PHOTO_KEPT = "predict_photo_kept"
#: whether it is predicted in place of the uploader's photo: once a visit to another page emptied the uploader, until
#: the user removes it or submits another
PHOTO_EARLIER = "predict_photo_earlier"


def _forget_photo() -> None:
    st.session_state[PHOTO_KEPT] = None
    st.session_state[PHOTO_EARLIER] = False


def _submitted_photo(uploaded: UploadedFile | None) -> tuple[str, bytes] | None:
    """The photo to predict at a submission: the one uploaded, kept for when the user comes back from another page
    (the uploader sits in a form: no callback can keep it as it changes), else the one kept if still shown as such."""
    if uploaded is not None:
        st.session_state[PHOTO_KEPT] = uploaded.name, uploaded.getvalue()
        st.session_state[PHOTO_EARLIER] = False
    elif not st.session_state.get(PHOTO_EARLIER):  # the user removed it from the uploader
        _forget_photo()
    return st.session_state.get(PHOTO_KEPT)


def predict_page(predictor: Predictor) -> None:
    st.header("Predict")
    # Streamlit forgets the state of a widget it did not draw: back from another page, the uploader is empty and cannot
    # be given a file; the photo last submitted stands in for it, shown as such, until removed or replaced
    if "predict_photo" not in st.session_state:
        st.session_state[PHOTO_EARLIER] = st.session_state.get(PHOTO_KEPT) is not None
    with st.form("predict"):
        title = st.text_input("Title", key="predict_title", max_chars=views.MAX_TEXT_CHARS)
        description = st.text_area("Description", key="predict_description", max_chars=views.MAX_TEXT_CHARS)
        specifications = st.text_area(
            "Specifications",
            key="predict_specifications",
            max_chars=views.MAX_TEXT_CHARS,
            placeholder="Type: Bath Towel\nMaterial: Cotton",
            help="one `Key: value` per line; read after the description, as a Flipkart specification table is; "
            f"the two together hold at most {views.MAX_TEXT_CHARS:,} characters, as in the REST API",
        )
        photo = st.file_uploader(
            f"Photo ({accepted_formats()})",
            key="predict_photo",
            help=f"at most {views.MAX_UPLOAD_BYTES // 2**20} MB; the type is checked on the content",
            # the browser refuses far larger files before sending them (Streamlit's own limit is 200 MB);
            # rounded up so that our check, with its clearer message, decides at the boundary
            max_upload_size=math.ceil(views.MAX_UPLOAD_BYTES / 1e6),
        )
        # a kept widget takes no default value; the kept one is cut to a model of fewer categories, loaded since
        st.session_state["top_k"] = min(st.session_state.get("top_k", 5), len(predictor.labels))
        top_k = st.slider("Categories shown", 1, len(predictor.labels), key="top_k")
        explained = st.checkbox(
            "Explain: which words and which parts of the photo decided",
            key="predict_explain",
            help="occlusion: one model row per distinct word and per square over the photo (seconds, not milliseconds)",
        )
        submitted = st.form_submit_button("Predict")
    kept = _submitted_photo(photo) if submitted else None
    if photo is None and st.session_state.get(PHOTO_EARLIER):
        name = st.session_state[PHOTO_KEPT][0]
        st.caption(views.as_written(f"Photo: {name}, uploaded earlier, predicted with what is typed."))
        st.button(views.as_written(f"Remove {name}"), key="forget_photo", on_click=_forget_photo)
    if not submitted:
        return
    description = views.described(description, specifications)
    if refusal := views.text_refusal(title, description):
        st.error(views.as_written(refusal))
        return
    image = None
    if kept is not None:
        name, image = kept
        try:
            preview = views.check_photo(image, name)
        except ValueError as exc:
            st.error(views.as_written(f"Photo refused: {exc}"))
            return
        st.image(preview, width=views.PREVIEW_SIDE)
    present = {"text": is_readable(title) or is_readable(description), "image": image is not None}
    given = [modality for modality, there in present.items() if there]
    if not given:
        st.warning("Type a title or a description (with a letter or a digit), or upload a photo.")
        return
    product = {"title": title, "description": description, "image": image}
    prediction, explanation = _predicted(predictor, product, top_k, explained)
    if not prediction.modalities_used:
        # a photo alone for a model that does not read photos, text alone for one that reads photos only: the
        # model's answer would be its class prior, from nothing; prodcat predict and the API give it no category either
        st.warning(views.nothing_read(modalities_read_by_bundle(predictor.manifest), given))
        return
    _show_prediction(prediction, explanation, predictor.threshold)


def _predicted(
    predictor: Predictor, product: dict[str, Any], top_k: int, explained: bool
) -> tuple[Prediction, Explanation | None]:
    """The prediction of ``product`` (its title, description and photo), and its explanation when asked (seconds:
    one model row per word and per square of the photo, under a spinner); ``None`` when not."""
    if not explained:
        return predictor.predict_one(**product, top_k=top_k), None
    with st.spinner("Explaining: the product without each of its words, and with each part of its photo hidden…"):
        explanation = explain(predictor, product, top_k=top_k)
    return explanation.prediction, explanation


def _show_prediction(prediction: Prediction, explanation: Explanation | None, threshold: float) -> None:
    """The predict page's answer: category, confidence against the decision ``threshold``, the modalities read, the
    decision, the top categories as bars and as a table, then why (``explanation``, when asked)."""
    left, middle, right = st.columns(3)
    left.metric("category", views.as_written(prediction.category))  # a metric's value is Markdown
    middle.metric("confidence", views.confidence_figures(prediction.confidence, threshold)[0])
    right.metric("from", " + ".join(prediction.modalities_used))
    sentence = views.decision_sentence(prediction.decision, prediction.confidence, threshold)
    (st.success if prediction.decision == "auto" else st.warning)(sentence)
    top = views.top_k_table(prediction.top_k)
    category_bars(top, "probability", unit=True)
    st.dataframe(top.round(4))
    if explanation is not None:
        explanation_section(explanation)


def explanation_section(explanation: Explanation) -> None:
    st.subheader("Why")
    st.caption(
        views.as_written(
            f"A weight is how much the probability of {explanation.prediction.category} drops when the word is "
            "removed or the part of the photo hidden: positive supports it, negative pulls away"
            + (f" (towards {explanation.runner_up})." if explanation.runner_up else ".")
        )
    )
    words, photo = st.columns(2)
    if explanation.words is None:
        words.info(f"No word weights: {explanation.words_skipped}")
    else:
        # the table's names are the API's; the headers say whose probability each weight moves
        # (a model of one category has no runner-up: its column, all empty, is hidden)
        headers = {
            "weight": f"weight: {explanation.prediction.category}",
            "runner_up_weight": f"weight: {explanation.runner_up}" if explanation.runner_up else None,
        }
        words.dataframe(
            views.word_weights_table(explanation.words).round(4),
            hide_index=True,
            key="word_weights",
            column_config=headers,
        )
        # what prodcat explain's report and the API (its `negligible`) say of them: tiny weights rank noise
        if note := words_note(explanation.words):
            words.caption(f"Word weights {note}.")
    if explanation.pixels is None:
        photo.info(f"No heatmap: {explanation.pixels_skipped}")
    else:
        pixels = explanation.pixels
        photo.image(pixels.overlay(), caption="red: supports the category; blue: pulls away")
        # as the report says it (the API's largest_drop and negligible): a faint heatmap of noise is not read as a map
        photo.caption(f"Probability on the photo as decoded: {pixels.reference_probability:.3f}; {pixel_note(pixels)}.")


def _remember_upload() -> None:
    """Keep the predictions CSV uploaded (``None`` once removed) beside its uploader, which a visit to another page
    empties and which cannot be given a file back: coming back shows it again, as a typed path is."""
    upload = st.session_state.get("predictions_upload")
    st.session_state["predictions_uploaded"] = None if upload is None else (upload.name, upload.getvalue())


def _forget_upload() -> None:
    st.session_state["predictions_uploaded"] = None


def _predictions_from_csv(roots: Sequence[Path]) -> views.Predictions | None:
    """The predictions CSV given by path or upload (``None``, after saying why, when there is none to show)."""
    typed = st.text_input("Path of a CSV from `prodcat predict` or `prodcat cv`", key="predictions_path").strip()
    upload = st.file_uploader("…or upload one", type="csv", key="predictions_upload", on_change=_remember_upload)
    kept = st.session_state.get("predictions_uploaded")
    if upload is None and kept is not None:
        st.caption(views.as_written(f"Showing {kept[0]}, uploaded earlier."))
        st.button(views.as_written(f"Close {kept[0]}"), key="forget_upload", on_click=_forget_upload)
    try:
        if kept is not None:
            if typed:  # else the page goes on showing the upload as if it were the file typed
                shown = f"Showing the uploaded {kept[0]}, not {typed}: remove the upload to read that file."
                st.info(views.as_written(shown))
            return load_uploaded_predictions(kept[1], kept[0])
        if not typed:
            return None
        path = views.readable_path(typed, roots)
        return load_predictions(str(path), views.modification_stamp(path))
    except (views.PredictionsFormatError, views.PathRefused, OSError) as exc:
        st.error(views.as_written(str(exc)))
        return None


def _predictions_of_a_sample(
    predictor: Predictor, bundle: str, catalogue: views.LoadedCatalogue | None
) -> views.Predictions | None:
    """Predictions of a sample of the catalogue by the model of ``bundle``, once asked for (kept across reruns and
    pages)."""
    if catalogue is None:
        st.info("Give a catalogue in the sidebar to predict a sample of it.")
        return None
    catalog = catalogue.catalog
    if not len(catalog):
        st.info("The catalogue has no product to predict.")
        return None
    size_column, seed_column = st.columns(2)
    size = size_column.number_input(f"Products (of {len(catalog):,})", min_value=1, key="sample_size")
    seed = seed_column.number_input(
        "Seed", min_value=0, key="sample_seed", help="which products are drawn: another seed, another sample"
    )
    st.info(
        "Stay on this page while the sample is predicted: going to another page, or changing anything here, "
        "stops it. A finished sample is kept and shown again when you come back."
    )
    if st.button("Predict the sample", key="predict_sample"):
        made_from = catalogue.stamp, views.modification_stamp(bundle)  # before: a model replaced meanwhile is not it
        bar = st.progress(0.0, text="predicting… stay on this page")

        def show_progress(done: float) -> None:
            bar.progress(done, text="predicting… stay on this page")

        predicted = views.predict_sample(predictor, catalog, int(size), seed=int(seed), on_progress=show_progress)
        st.session_state["sample_predictions"] = (catalogue.path, made_from, predicted)
        bar.empty()
    # shown only beside the catalogue it was drawn from, both it and the model as they were then: the catalogue
    # rewritten since, the products predicted may be gone or changed; the model replaced, it would predict otherwise
    predicted_from, made_from, predicted = st.session_state.get("sample_predictions", (None, None, None))
    if predicted_from != catalogue.path:
        return None
    now = catalogue.stamp, views.modification_stamp(bundle)
    reasons = (f"{catalogue.path} was rewritten", "the model was replaced")
    changed = [reason for reason, then, stamp in zip(reasons, made_from, now, strict=True) if then != stamp]
    if changed:
        del st.session_state["sample_predictions"]
        st.warning(
            views.as_written(
                f"The sample predicted earlier is dropped: {' and '.join(changed)} since; predict one again."
            )
        )
        return None
    return predicted


def _catalogue_warnings(
    predictor: Predictor, table: pd.DataFrame, catalogue: views.LoadedCatalogue, models_own: bool
) -> None:
    """Say when the catalogue does not match the predictions or the model; when another model made the predictions
    (not ``models_own``), only what concerns the catalogue."""
    labels = predictor.labels if models_own else None
    for warning in views.catalogue_warnings(table, catalogue.catalog.frame, labels):
        st.warning(views.as_written(warning))


def _in_training_caveats(
    predictor: Predictor, bundle: str, table: pd.DataFrame, shown: pd.DataFrame, catalogue: views.LoadedCatalogue
) -> None:
    """Say when the products whose agreement is shown, the :func:`views.compared_rows` of the filtered rows ``shown``,
    hold products the model was trained on: looked for once among those of the whole ``table`` (it reads their
    photos), counted among those the filters keep."""
    # of the products the agreement counts: those not scored neither agree nor disagree
    compared = views.compared_rows(shown)["product_id"]
    if compared.empty:
        return
    searched = views.compared_rows(table)["product_id"]
    frame = catalogue.catalog.frame
    stamps = views.modification_stamp(bundle), catalogue.stamp
    found = in_training(bundle, stamps[0], catalogue.path, stamps[1], searched, frame, predictor.manifest)
    _say_in_training(views.in_training_among(found, frame, searched, compared))


def _say_in_training(found: views.InTraining) -> None:
    for caveat in views.in_training_caveats(found):
        st.warning(views.as_written(caveat))


def _top_categories_of_a_product(shown: pd.DataFrame, top_k: dict[str, list[dict[str, Any]]]) -> None:
    """The top categories (``top_k``, by product id) of a product chosen among the rows ``shown``, as a small table
    (the Predict page's)."""
    if "top_k" not in shown or shown.empty:
        return
    product = st.selectbox("Top categories of the product", shown["product_id"], key="top_k_product")
    if entries := top_k.get(product):
        st.dataframe(views.top_k_table(entries).round(4))
    else:
        st.caption("No top categories recorded for it.")


def _labelled_sections(shown: pd.DataFrame, agreement: float | None, threshold: float, table: pd.DataFrame) -> None:
    """The confusion and the label-noise candidates of the rows shown (``shown``, when they hold a labelled product
    scored: their ``agreement``, :func:`views.agreement`, the page has computed, is not ``None``), and between them
    the report's per-class table, counted on every row of the ``table`` before the filters as the report counts them
    (when it holds one, whatever the filters keep)."""
    labelled_shown = agreement is not None
    if labelled_shown:
        st.subheader("Given (rows) against predicted (columns) category")
        st.dataframe(views.confusion_table(shown))
    if views.agreement(table) is not None and table["decision"].isin(["auto", "review"]).any():
        # the report's figures, at the decisions the rows hold: a filter on the predicted category would count only
        # the products predicted in it, each category's recall then 1.0
        st.subheader("Per category")
        st.caption(views.as_written(views.PREDICTIONS_PER_CLASS_NOTE))
        per_class_dataframe(views.predictions_per_class(table))
    if labelled_shown:
        _label_noise_candidates(shown, threshold)


def _label_noise_candidates(table: pd.DataFrame, threshold: float) -> None:
    """The confident disagreements among the rows shown (``table``), from a least confidence the user may move."""
    st.subheader("Confident disagreements (label-noise candidates)")
    # the threshold itself, not a rounding below it: by default, the disagreements the model would auto-accept (none
    # for a model that auto-accepts nothing, whose threshold lies just above 1, past the slider's end), and those the
    # table auto-accepted below it (a cv table's folds each decided at its own threshold)
    default = views.least_confidence_auto_accepted(table, threshold)
    # a kept widget takes no default value: set here, it follows the table shown (a cv CSV, then a sample of the
    # model's own predictions) for as long as the user has not moved it from the one it was last given
    if st.session_state.get("noise_confidence") in (None, st.session_state.get(NOISE_DEFAULT)):
        st.session_state["noise_confidence"] = default
    st.session_state[NOISE_DEFAULT] = default
    min_confidence = st.slider("Least confidence", 0.0, 1.0, step=0.01, format="%.3f", key="noise_confidence")
    noise = views.confident_disagreements(table, min_confidence)
    shown = views.with_photos(noise.head(NOISE_ROWS), thumbnail, PREDICTION_COLUMNS)
    photos, auto = bool(shown["photo"].notna().any()), int((noise["decision"] == "auto").sum())
    st.caption(views.disagreements_caption(len(noise), NOISE_ROWS, photos=photos, auto=auto))
    photo_table(shown)


def predictions_page(
    predictor: Predictor,
    bundle: str,
    catalogue: views.LoadedCatalogue | None,
    model_level: int | None,
    roots: Sequence[Path],
) -> None:
    st.header("Predictions")
    source = st.radio(
        "Source", ("Predictions CSV", "Predict a sample of the catalogue"), horizontal=True, key="predictions_source"
    )
    if source == "Predictions CSV":
        predictions = _predictions_from_csv(roots)
    else:
        predictions = _predictions_of_a_sample(predictor, bundle, catalogue)
    if predictions is None:
        return
    issues_expander("issue(s): rows skipped, products not scored or read in part", predictions.issues)
    table = predictions.table
    own_labels = "given" in table
    known = set(predictor.labels)
    # a `prodcat cv` table brings its own, out-of-fold, labels; another model's predictions, its own training data
    in_sample_checked = False
    if catalogue is not None:
        # a CSV may come from a model of another level: the given categories are cut to the predictions' level
        level = views.predictions_level(table["predicted"], predictor.labels, model_level)
        note = views.level_note(level, model_level, own_labels) or views.other_model_note(
            table["predicted"], predictor.labels
        )
        if note:
            st.info(note)
        known |= set(views.labels_at(catalogue.catalog.frame, level).dropna())
        table = views.attach_catalogue(table, catalogue.catalog.frame, level)
        _catalogue_warnings(predictor, table, catalogue, models_own=note is None)
        in_sample_checked = not own_labels and note is None
    if unknown := views.unknown_predictions_note(table, known):
        st.info(views.as_written(unknown))

    left, middle, right = st.columns([1, 2, 2])
    # a product the model could not score has no category (and a hand-made table may leave a cell blank)
    decisions = left.multiselect("Decision", sorted(table["decision"].dropna().unique()), key="filter_decision")
    predicted_categories = sorted(table["predicted"].dropna().unique())
    categories = middle.multiselect("Predicted category", predicted_categories, key="filter_category")
    # a range: the value the page's state starts it with is a pair (0.0, 1.0), which streamlit returns as a tuple
    confidence = cast(tuple[float, float], right.slider("Confidence", 0.0, 1.0, step=0.01, key="filter_confidence"))
    shown = views.filter_predictions(table, decisions, categories, confidence)
    columns = st.columns(3)
    columns[0].metric("products", f"{len(shown):,}")
    columns[1].metric("auto-accepted", percent((shown["decision"] == "auto").mean()) if len(shown) else "–")
    agreement = views.agreement(shown)
    compared = len(views.compared_rows(shown))
    columns[2].metric(
        "agree with the given category",
        "–" if agreement is None else percent(agreement),
        help=f"among the {compared:,} products with a given category that were scored",
    )
    # a `prodcat evaluate` predictions.csv marks the products its model was trained on: as evaluate said of them
    if (marked := views.marked_in_training(shown)) is not None:
        _say_in_training(marked)
    elif catalogue is not None and in_sample_checked:
        _in_training_caveats(predictor, bundle, table, shown, catalogue)
    if caveat := views.small_sample_caveat(compared):
        st.warning(caveat)
    st.dataframe(shown, hide_index=True, column_order=[c for c in PREDICTION_COLUMNS if c in shown])
    _top_categories_of_a_product(shown, predictions.top_k)
    _labelled_sections(shown, agreement, predictor.threshold, table)


# ---------------------------------------------------------------------------------------------- layout
def sidebar_catalogue(default: str | None, roots: Sequence[Path]) -> views.LoadedCatalogue | None:
    """The catalogue whose path is typed in the sidebar (``None``, after saying why there, when there is none)."""
    typed = st.sidebar.text_input("Catalogue", default or "", key="catalogue", help="folder or CSV/Parquet").strip()
    if not typed:
        return None
    try:
        path = views.readable_path(typed, roots)
        stamp = views.modification_stamp(path)
        catalogue = load_catalogue(str(path), stamp)
    except (OSError, CatalogFormatError, views.PathRefused) as exc:
        sidebar_message(st.sidebar.error, str(exc))
        return None
    for warning in catalogue.warnings:
        sidebar_message(st.sidebar.warning, warning)
    # its stamp covers its tables, not its photos (a stat of each would hold every rerun): a photo copied where one was
    # not found, or one removed, is seen once the user asks
    st.sidebar.button(
        "Read the catalogue again",
        key="read_catalogue_again",
        on_click=_read_catalogue_again,
        args=(str(path), stamp),
        help="It is read again by itself when its tables change, not when photos are added, removed or replaced: "
        "read it again then.",
    )
    return catalogue


def _read_catalogue_again(path: str, stamp: tuple) -> None:
    """Drop the cached read of the catalogue at ``path`` (of ``stamp``), and the sample predicted from that read: it
    would go on listing the photos not found that the user read the catalogue again for."""
    load_catalogue.clear(path, stamp)
    # keyed on the same stamp, it would answer from that read, without the photos it found missing; its entries are
    # keyed on the products predicted too, unknown here: all go (4 at most)
    in_training.clear()
    if st.session_state.get("sample_predictions", (None,))[0] == path:
        del st.session_state["sample_predictions"]


def sidebar_message(say: Callable[[str], object], message: str) -> None:
    """A message of the catalogue loader ``say``-ed in the sidebar, escaped (a typed path, a table's column names),
    with what the app reads in place of the command-line options it may name."""
    say(views.as_written(message))
    if "--" in message:
        st.sidebar.caption(APP_COLUMNS_HINT)


def main() -> None:
    args = parse_arguments()
    st.set_page_config(page_title="prodcat", layout="wide")
    st.html(WHOLE_METRICS)
    keep_widget_values(KEPT_ACROSS_PAGES)
    # the defaults of those kept widgets that have one (they take no default value themselves)
    # as text: a text input's state holding the Path that --predictions is parsed to fails the page
    st.session_state.setdefault("predictions_path", str(args.predictions or ""))
    st.session_state.setdefault("sample_size", 200)
    st.session_state.setdefault("filter_confidence", (0.0, 1.0))
    try:
        predictor = load_predictor(args.model, views.modification_stamp(args.model))
    except BundleError as exc:
        st.error(views.as_written(str(exc)))
        st.stop()
    model_level = bundle_level(predictor.manifest)
    roots = readable_roots(args)

    st.sidebar.title("prodcat")
    page = st.sidebar.radio("Page", ("Data", "Model", "Predict", "Predictions"), key="page")
    catalogue = sidebar_catalogue(args.data, roots)
    st.sidebar.caption(f"Model {predictor.version}: {len(predictor.labels):,} categories")

    if page == "Data":
        data_page(catalogue, model_level, modalities_read_by_bundle(predictor.manifest))
    elif page == "Model":
        model_page(predictor.manifest)
    elif page == "Predict":
        predict_page(predictor)
    else:
        predictions_page(predictor, args.model, catalogue, model_level, roots)


# Streamlit runs this file as ``__main__``; a process that merely imports it must not start the app:
# a spawned multiprocessing child (a dask worker) re-imports its parent's main module, which is this
# script once Streamlit's test harness has run it in the parent.
if __name__ == "__main__":
    main()
