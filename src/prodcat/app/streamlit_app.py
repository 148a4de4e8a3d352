"""The Streamlit script of ``prodcat app``: four pages laying out what :mod:`prodcat.app.views` computes.

Run by ``prodcat app MODEL [--data CATALOGUE] [--predictions CSV]``, which calls
``streamlit run <this file> -- MODEL [--data ...] [--predictions ...]``. Predictions go through the
same :class:`~prodcat.predict.Predictor` as the CLI and the REST API.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import pandas as pd
import streamlit as st

from prodcat.app import views
from prodcat.app.command import add_app_arguments
from prodcat.bundle import BundleError
from prodcat.catalog.loaders import CatalogFormatError, load_catalog
from prodcat.catalog.schema import depth, is_readable
from prodcat.evaluate.explain import Explanation, explain
from prodcat.predict import Predictor

#: products per page of the Data page's grid (each row decodes one photo thumbnail)
GRID_PAGE_SIZE = 20
ANY = "(any)"
#: columns of the predictions tables, in this order (those a table has)
PREDICTION_COLUMNS = ("product_id", "title", "given", "predicted", "confidence", "decision", "modalities_used", "top_k")
#: label-noise candidates listed (each row decodes one photo thumbnail)
NOISE_ROWS = 50


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="prodcat app")
    add_app_arguments(parser)
    return parser.parse_args(sys.argv[1:])


#: embeddings the app keeps in memory: typed products, uploaded photos and the occluded variants of an
#: explanation are throw-away, never written to the on-disk cache (as the API's are not)
MEMORY_CACHE_ITEMS = 10_000


@st.cache_resource(show_spinner="Loading the model bundle…")
def load_predictor(path: str) -> Predictor:
    predictor = Predictor.load(path)
    predictor.model.set_memory_cache(MEMORY_CACHE_ITEMS)
    predictor.model.set_progress(False)  # progress bars belong to the page, not to the server's terminal
    return predictor


@st.cache_data(show_spinner="Reading the catalogue…")
def load_frame(path: str) -> tuple[pd.DataFrame, list[str]]:
    """The canonical frame and the loader's row issues (as text) of a catalogue."""
    catalog = load_catalog(path)
    return catalog.frame, [str(issue) for issue in catalog.issues]


@st.cache_data(show_spinner=False, max_entries=10_000)
def thumbnail(path: str) -> str | None:
    return views.thumbnail_uri(path)


@st.cache_data(show_spinner="Reading the predictions…")
def load_predictions(path: str) -> pd.DataFrame:
    return views.read_predictions(path)


def percent(share: float) -> str:
    return f"{share:.1%}"


# ---------------------------------------------------------------------------------------------- pages
def data_page(frame: pd.DataFrame | None, issues: list[str], model_level: int | None) -> None:
    st.header("Data")
    if frame is None:
        st.info("Give a catalogue in the sidebar (or start the app with `--data`) to explore it.")
        return
    levels = max(depth(frame["category"].dropna()), 1)
    level = st.selectbox(
        "Category level",
        range(1, levels + 1),
        index=min(model_level or levels, levels) - 1,
        help="Categories are paths; this cuts them to their first levels (the model predicts its level).",
        key="data_level",
    )
    summary = views.catalogue_summary(frame, level)
    for column, (label, value) in zip(
        st.columns(6),
        [
            ("products", summary.products),
            ("labelled", summary.labelled),
            (f"categories (level {level})", summary.categories),
            ("without photo", percent(summary.without_photo)),
            ("without title", percent(summary.without_title)),
            ("without description", percent(summary.without_description)),
        ],
        strict=True,
    ):
        column.metric(label, value)
    if issues:
        with st.expander(f"{len(issues)} row issue(s) while reading the catalogue"):
            st.text("\n".join(issues[:200]))

    balance = views.class_balance(frame, level)
    st.subheader("Class balance")
    st.bar_chart(balance, horizontal=True, x_label="", y_label="products")

    st.subheader("Text length (characters)")
    lengths = views.text_lengths(frame)
    st.dataframe(lengths.describe().T.round(1))
    for column, field in zip(st.columns(2), ("title", "description"), strict=True):
        column.caption(field)
        column.bar_chart(views.length_histogram(lengths[field]), x_label="characters", y_label="products")

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
    page = st.number_input(f"Page (of {pages}; {len(products)} products)", 1, pages, 1, key="data_page")
    shown = products.iloc[(page - 1) * GRID_PAGE_SIZE : page * GRID_PAGE_SIZE]
    st.dataframe(
        views.product_grid(shown, level, thumbnail),
        hide_index=True,
        height="content",
        row_height=80,
        column_config={"photo": st.column_config.ImageColumn("photo", width="small")},
    )


def model_page(manifest: dict[str, Any]) -> None:
    st.header("Model")
    st.table(views.model_overview(manifest))
    metrics = manifest.get("metrics") or {}
    if not metrics:
        st.info("This bundle records no training metrics.")
        return
    st.subheader("Metrics recorded at training")
    if "estimated_by" in metrics:
        st.caption(f"Estimated by {metrics['estimated_by']} on {metrics.get('n', '?')} products.")
    st.dataframe(views.headline_table(metrics).round(4))
    levels = views.levels_table(metrics)
    if not levels.empty:
        st.caption("Per level of the category path")
        st.dataframe(levels.round(4))

    decision = metrics.get("decision")
    calibration = metrics.get("calibration")
    if decision or calibration:
        st.subheader("Decision and calibration")
        columns = st.columns(4)
        if decision:
            columns[0].metric("decision threshold", f"{decision['threshold']:.3f}")
            columns[1].metric("auto-accepted", percent(decision["automation_rate"]))
            columns[2].metric("precision among auto-accepted", f"{decision['auto_precision']:.3f}")
        if calibration:
            columns[3].metric("ECE (0 = calibrated)", f"{calibration['ece']:.3f}")

    per_class = views.per_class_table(metrics)
    if not per_class.empty:
        st.subheader("Per category")
        st.bar_chart(per_class["f1"], horizontal=True, x_label="", y_label="F1")
        st.dataframe(per_class.round(4))

    reliability = views.reliability_table(metrics)
    if not reliability.empty:
        st.subheader("Reliability diagram")
        st.caption("Accuracy per confidence bin against the diagonal of perfect calibration.")
        st.line_chart(
            reliability.set_index("confidence")[["accuracy"]].assign(perfect=reliability["confidence"].to_numpy()),
            x_label="mean confidence",
            y_label="accuracy",
        )
        st.dataframe(reliability.round(4), hide_index=True)

    with st.expander(f"Labels ({len(manifest.get('labels', []))})"):
        st.write(manifest.get("labels", []))
    with st.expander("Config"):
        st.json(manifest.get("config", {}))
    with st.expander("Library versions"):
        st.json(manifest.get("libraries", {}))


def predict_page(predictor: Predictor) -> None:
    st.header("Predict")
    with st.form("predict"):
        title = st.text_input("Title", key="predict_title", max_chars=views.MAX_TEXT_CHARS)
        description = st.text_area("Description", key="predict_description", max_chars=views.MAX_TEXT_CHARS)
        specifications = st.text_area(
            "Specifications",
            key="predict_specifications",
            max_chars=views.MAX_TEXT_CHARS,
            placeholder="Type: Bath Towel\nMaterial: Cotton",
            help="one `Key: value` per line; read after the description, as a Flipkart specification table is",
        )
        photo = st.file_uploader(
            "Photo (JPEG, PNG, WebP, GIF, BMP or TIFF)",
            key="predict_photo",
            help=f"at most {views.MAX_UPLOAD_BYTES // 2**20} MB; the type is checked on the content",
            # the browser refuses far larger files before sending them (Streamlit's own limit is 200 MB);
            # rounded up so that our check, with its clearer message, decides at the boundary
            max_upload_size=math.ceil(views.MAX_UPLOAD_BYTES / 1e6),
        )
        top_k = st.slider("Categories shown", 1, len(predictor.labels), min(5, len(predictor.labels)), key="top_k")
        explained = st.checkbox(
            "Explain: which words and which parts of the photo decided",
            key="predict_explain",
            help="occlusion: one model row per distinct word and per square over the photo (seconds, not milliseconds)",
        )
        submitted = st.form_submit_button("Predict")
    if not submitted:
        return
    image = None
    if photo is not None:
        image = photo.getvalue()
        try:
            preview = views.check_photo(image, photo.name)
        except ValueError as exc:
            st.error(f"Photo refused: {exc}")
            return
        st.image(preview, width=200)
    description = views.described(description, specifications)
    if image is None and not (is_readable(title) or is_readable(description)):
        st.warning("Type a title or a description (with a letter or a digit), or upload a photo.")
        return
    product = {"title": title, "description": description, "image": image}
    explanation = None
    if explained:
        with st.spinner("Explaining: the product without each of its words, and with each part of its photo hidden…"):
            explanation = explain(predictor, product, top_k=top_k)
        prediction = explanation.prediction
    else:
        prediction = predictor.predict_one(**product, top_k=top_k)
    left, middle, right = st.columns(3)
    left.metric("category", prediction.category)
    middle.metric("confidence", percent(prediction.confidence))
    right.metric("from", " + ".join(prediction.modalities_used) or "nothing usable")
    if prediction.decision == "auto":
        st.success(f"Auto-accepted: confidence at or above the threshold {predictor.threshold:.3f}.")
    else:
        st.warning(f"Sent to review: confidence below the threshold {predictor.threshold:.3f}.")
    top = views.top_k_table(prediction)
    st.bar_chart(top, horizontal=True, sort=False, x_label="", y_label="probability")
    st.dataframe(top.round(4))
    if explanation is not None:
        explanation_section(explanation)


def explanation_section(explanation: Explanation) -> None:
    st.subheader("Why")
    st.caption(
        f"A weight is how much the probability of {explanation.prediction.category} drops when the word is removed "
        "or the part of the photo hidden: positive supports it, negative pulls away"
        + (f" (towards {explanation.runner_up})." if explanation.runner_up else ".")
    )
    words, photo = st.columns(2)
    if explanation.words is None:
        words.info(f"No word weights: {explanation.words_skipped}")
    else:
        words.dataframe(views.word_weights_table(explanation.words).round(4), hide_index=True, key="word_weights")
    if explanation.pixels is None:
        photo.info(f"No heatmap: {explanation.pixels_skipped}")
    else:
        photo.image(explanation.pixels.overlay(), caption="red: supports the category; blue: pulls away")


def _predictions_from_csv(predictions_path: str | None) -> pd.DataFrame | None:
    """The predictions CSV given by path or upload (``None``, after saying why, when there is none to show)."""
    path = st.text_input("Path of a CSV from `prodcat predict` or `prodcat cv`", predictions_path or "")
    upload = st.file_uploader("…or upload one", type="csv", key="predictions_upload")
    try:
        if upload is not None:
            return views.read_predictions(upload, upload.name)
        return load_predictions(path) if path else None
    except (views.PredictionsFormatError, OSError) as exc:
        st.error(str(exc))
        return None


def _predictions_of_a_sample(predictor: Predictor, catalogue: str, frame: pd.DataFrame | None) -> pd.DataFrame | None:
    """Predictions of a sample of the catalogue, once asked for (kept across reruns)."""
    if frame is None:
        st.info("Give a catalogue in the sidebar to predict a sample of it.")
        return None
    if frame.empty:
        st.info("The catalogue has no product to predict.")
        return None
    size = st.number_input("Products", 1, len(frame), min(200, len(frame)), key="sample_size")
    if st.button("Predict the sample", key="predict_sample"):
        bar = st.progress(0.0, text="predicting…")
        predicted = views.predict_sample(
            predictor, frame, int(size), on_progress=lambda done: bar.progress(done, text="predicting…")
        )
        st.session_state["sample_predictions"] = (catalogue, predicted)
        bar.empty()
    # kept across reruns, but only shown beside the catalogue it was drawn from
    predicted_from, predicted = st.session_state.get("sample_predictions", (None, None))
    return predicted if predicted_from == catalogue else None


def predictions_page(
    predictor: Predictor,
    catalogue: str,
    frame: pd.DataFrame | None,
    model_level: int | None,
    predictions_path: str | None,
) -> None:
    st.header("Predictions")
    source = st.radio(
        "Source", ("Predictions CSV", "Predict a sample of the catalogue"), horizontal=True, key="predictions_source"
    )
    if source == "Predictions CSV":
        table = _predictions_from_csv(predictions_path)
    else:
        table = _predictions_of_a_sample(predictor, catalogue, frame)
    if table is None:
        return
    if frame is not None:
        table = views.attach_catalogue(table, frame, model_level)

    left, middle, right = st.columns([1, 2, 2])
    # a product the model could not score has no category (and a hand-made table may leave a cell blank)
    decisions = left.multiselect("Decision", sorted(table["decision"].dropna().unique()), key="filter_decision")
    predicted_categories = sorted(table["predicted"].dropna().unique())
    categories = middle.multiselect("Predicted category", predicted_categories, key="filter_category")
    confidence = right.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="filter_confidence")
    shown = views.filter_predictions(table, decisions, categories, confidence)
    columns = st.columns(3)
    columns[0].metric("products", len(shown))
    columns[1].metric("auto-accepted", percent((shown["decision"] == "auto").mean()) if len(shown) else "–")
    agreement = views.agreement(shown)
    columns[2].metric("agree with the given category", "–" if agreement is None else percent(agreement))
    st.dataframe(shown, hide_index=True, column_order=[c for c in PREDICTION_COLUMNS if c in shown])

    if agreement is None:
        return
    st.subheader("Given (rows) against predicted (columns) category")
    st.dataframe(views.confusion_table(shown))
    st.subheader("Confident disagreements (label-noise candidates)")
    min_confidence = st.slider(
        "Least confidence", 0.0, 1.0, round(predictor.threshold, 2), 0.01, key="noise_confidence"
    )
    noise = views.confident_disagreements(shown, min_confidence)
    st.caption(f"{len(noise)} products; the {min(len(noise), NOISE_ROWS)} most confident with their photo.")
    st.dataframe(
        views.with_photos(noise.head(NOISE_ROWS), thumbnail, PREDICTION_COLUMNS),
        hide_index=True,
        height="content",
        row_height=80,
        column_config={"photo": st.column_config.ImageColumn("photo", width="small")},
    )


# ---------------------------------------------------------------------------------------------- layout
def main() -> None:
    args = parse_arguments()
    st.set_page_config(page_title="prodcat", layout="wide")
    try:
        predictor = load_predictor(args.model)
    except BundleError as exc:
        st.error(str(exc))
        st.stop()
    model_level = predictor.manifest.get("config", {}).get("level")

    st.sidebar.title("prodcat")
    page = st.sidebar.radio("Page", ("Data", "Model", "Predict", "Predictions"), key="page")
    data_path = st.sidebar.text_input("Catalogue", args.data or "", key="catalogue", help="folder or CSV/Parquet")
    frame, issues = None, []
    if data_path:
        try:
            frame, issues = load_frame(data_path)
        except (OSError, CatalogFormatError) as exc:
            st.sidebar.error(str(exc))
    st.sidebar.caption(f"Model {predictor.version}: {len(predictor.labels)} categories")

    if page == "Data":
        data_page(frame, issues, model_level)
    elif page == "Model":
        model_page(predictor.manifest)
    elif page == "Predict":
        predict_page(predictor)
    else:
        predictions_page(predictor, data_path, frame, model_level, args.predictions)


# Streamlit runs this file as ``__main__``; a process that merely imports it must not start the app:
# a spawned multiprocessing child (a dask worker) re-imports its parent's main module, which is this
# script once Streamlit's test harness has run it in the parent.
if __name__ == "__main__":
    main()
