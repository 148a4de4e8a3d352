"""The benchmark scripts' small runs: ``--sample N`` checks in a minute that a script runs, its numbers never written
over ``benchmarks/results``, and ``fusion.py`` keeps its out-of-fold predictions where the user says, or nowhere."""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from pathlib import Path

import pytest

import fusion
from conftest import REPO_ROOT, tiny_products
from prodcat.config import load_config
from prodcat.evaluate.cv import cross_validate


@pytest.fixture
def tiny_fusion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """fusion.py on a tiny catalogue of its own ('tiny'), its results folder and prediction cache in ``tmp_path``, each
    variant trained with the fast text heads (the plumbing is under test, not the default model's features)."""
    tiny_products(0, 12).to_csv(tmp_path / "tiny.csv", index=False)
    monkeypatch.setattr(fusion, "DATASETS", tmp_path)
    monkeypatch.setattr(fusion, "CATALOGUES", {"tiny": ("tiny.csv", None)})
    monkeypatch.setattr(fusion, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(fusion, "PREDICTIONS", tmp_path / "cache" / "benchmarks" / "fusion")
    fast = load_config(REPO_ROOT / "configs" / "fast-text.yaml")

    def fast_cross_validate(frame, config, folds):
        return cross_validate(frame, config.model_copy(update={"heads": fast.heads[:1]}), folds=folds, progress=False)

    monkeypatch.setattr(fusion, "cross_validate", fast_cross_validate)
    (tmp_path / "temporary").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))  # where a sampled run's folder is made
    return tmp_path


def run_fusion(monkeypatch: pytest.MonkeyPatch, *options: str) -> None:
    variants = f"{fusion.REFERENCE},text only"
    arguments = ["--catalogues", "tiny", "--variants", variants, "--folds", "2", *options]
    monkeypatch.setattr(sys, "argv", ["fusion.py", *arguments])
    fusion.main()


def kept(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.csv"))


def test_a_sampled_fusion_run_writes_beside_itself_never_over_the_results_or_the_cache(tiny_fusion, monkeypatch):
    """fusion.py had no small run, and always wrote its results to benchmarks/results and its predictions to the
    prodcat cache: a check that it runs replaced the measured rows and the predictions their pairs are read from."""
    run_fusion(monkeypatch, "--sample", "24")
    [made] = (tiny_fusion / "temporary").iterdir()
    out = made / "results"
    assert sorted(path.name for path in out.iterdir()) == [
        "fusion.json",
        "fusion.md",
        "fusion_pairs.json",
        "predictions",
    ]
    assert kept(out / "predictions") == [
        "tiny/early_by_NB-SVM_(the_default_until_2026-12-05).csv",
        "tiny/text_only.csv",
    ]
    assert '"n": 24' in (out / "fusion.json").read_text()
    assert "text only" in (out / "fusion_pairs.json").read_text()  # paired on the predictions kept beside
    assert not (tiny_fusion / "results").exists() and not (tiny_fusion / "cache").exists()


def test_fusion_keeps_its_predictions_in_the_folder_named_or_nowhere(tiny_fusion, monkeypatch):
    """The out-of-fold predictions, which hold the catalogue's labels, went to the shared prodcat cache whatever the
    user wanted: now to --predictions DIR, or nowhere with --no-predictions (the rows then not paired)."""
    elsewhere, out = tiny_fusion / "elsewhere", tiny_fusion / "out"
    run_fusion(monkeypatch, "--out", str(out), "--predictions", str(elsewhere))
    assert len(kept(elsewhere)) == 2 and "text only" in (out / "fusion_pairs.json").read_text()
    run_fusion(monkeypatch, "--out", str(out), "--no-predictions")
    assert (out / "fusion_pairs.json").read_text() == '{\n  "tiny": {}\n}'
    assert kept(out) == [] and not (tiny_fusion / "cache").exists()


def test_a_fusion_run_on_whole_catalogues_still_writes_the_results_and_the_cache(tiny_fusion, monkeypatch):
    """As before the options: what a measurement writes, where the results' pairs are read from."""
    (tiny_fusion / "results").mkdir()  # as benchmarks/results is
    run_fusion(monkeypatch)
    assert (tiny_fusion / "results" / "fusion.json").is_file()
    assert len(kept(tiny_fusion / "cache" / "benchmarks" / "fusion")) == 2
    assert not any((tiny_fusion / "temporary").iterdir())


@pytest.fixture
def temporary_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a sampled run's new temporary folder is made, under ``tmp_path``."""
    (tmp_path / "temporary").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temporary"))
    return tmp_path / "temporary"


def run_script(monkeypatch: pytest.MonkeyPatch, script: str, *options: str) -> None:
    module = importlib.import_module(script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *options])
    module.main()


def test_a_sampled_robustness_run_writes_beside_itself_never_over_the_results(tmp_path, temporary_folders, monkeypatch):
    """robustness.py --sample N, its check that it runs, wrote its few products' figures over
    benchmarks/results/robustness_flipkart.json (the split, models and prodcat runs are stubbed here)."""
    import robustness

    monkeypatch.setattr(robustness, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(robustness, "split_catalogue", lambda data, work, seed: {"n_train": 8, "n_heldout": 2})
    monkeypatch.setattr(robustness, "trained_model", lambda work, name, options: {"heads": [name]})
    monkeypatch.setattr(robustness, "robustness", lambda work, model, report, options: [{"options": options}])
    work = ["--work", str(tmp_path / "work")]
    run_script(monkeypatch, "robustness", *work, "--sample", "7")
    [made] = temporary_folders.iterdir()
    written = json.loads((made / "robustness_flipkart.json").read_text())
    assert written["products"] == [{"options": ["--sample", "7"]}]
    run_script(monkeypatch, "robustness", *work, "--sample", "7", "--seed", "1", "--out", str(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text())["command"] == "benchmarks/robustness.py --sample 7 --seed 1"
    assert not (tmp_path / "results").exists()
    run_script(monkeypatch, "robustness", *work)  # a measurement, as before
    assert [path.name for path in (tmp_path / "results").iterdir()] == ["robustness_flipkart.json"]


def test_a_sampled_image_throughput_run_writes_beside_itself_never_over_the_results(
    tmp_path, temporary_folders, monkeypatch
):
    """image_throughput.py had no small run but --images N, and wrote any run over
    benchmarks/results/image_throughput.json (the timings are stubbed here: the paths are under test)."""
    import image_throughput

    photos = tmp_path / "photos"
    photos.mkdir()
    for number in range(5):
        (photos / f"{number}.jpg").write_bytes(b"")
    monkeypatch.setattr(image_throughput, "RESULTS", tmp_path / "results" / "image_throughput.json")
    monkeypatch.setattr(image_throughput, "SOURCES", {"photos": photos})
    monkeypatch.setattr(image_throughput.EffNetLite0, "model_path", lambda self: tmp_path / "model.onnx")
    monkeypatch.setattr(image_throughput, "bench_source", lambda paths, *settings: {"n_images": len(paths)})
    run_script(monkeypatch, "image_throughput", "--sample", "2")
    [made] = temporary_folders.iterdir()
    assert json.loads((made / "image_throughput.json").read_text())["photos"] == {"n_images": 2}
    run_script(monkeypatch, "image_throughput", "--images", "3", "--out", str(tmp_path / "throughput.json"))
    assert json.loads((tmp_path / "throughput.json").read_text())["photos"] == {"n_images": 3}
    assert not (tmp_path / "results").exists()
    run_script(monkeypatch, "image_throughput", "--images", "4")  # a measurement, as before
    assert json.loads((tmp_path / "results" / "image_throughput.json").read_text())["photos"] == {"n_images": 4}


def test_a_sampled_explain_run_writes_beside_itself_never_over_the_results(tmp_path, temporary_folders, monkeypatch):
    """explain.py had no small run but --products N, and wrote any run's entry into
    benchmarks/results/explain.json (the model and its timings are stubbed here: the paths are under test)."""
    from types import SimpleNamespace

    import explain

    products = tiny_products(0, 4).assign(image="photo.jpg")
    monkeypatch.setattr(explain, "RESULTS", tmp_path / "results" / "explain.json")
    monkeypatch.setattr(explain, "load_catalog", lambda path: SimpleNamespace(frame=products, format="csv"))
    model = SimpleNamespace(heads_={"text_tfidf": None}, fusion_method_="early")
    monkeypatch.setattr(explain, "ProductClassifier", lambda config: SimpleNamespace(fit=lambda frame: model))
    monkeypatch.setattr(explain, "loaded_predictor", lambda model, threads=None: None)
    explanation = SimpleNamespace(words=SimpleNamespace(words=["mug"]))
    monkeypatch.setattr(explain, "timed_calls", lambda *call: (dict.fromkeys(explain.CALLS, 1.0), explanation))
    run_script(monkeypatch, "explain", "--catalogue", "tiny", "--sample", "2")
    [made] = temporary_folders.iterdir()
    assert json.loads((made / "explain.json").read_text())["tiny"]["products"] == 2
    run_script(monkeypatch, "explain", "--catalogue", "tiny", "--products", "3", "--out", str(tmp_path / "e.json"))
    assert json.loads((tmp_path / "e.json").read_text())["tiny"]["products"] == 3
    assert not (tmp_path / "results").exists()
    run_script(monkeypatch, "explain", "--catalogue", "tiny", "--products", "3")  # a measurement, as before
    assert json.loads((tmp_path / "results" / "explain.json").read_text())["tiny"]["products"] == 3


def test_batch_gives_no_scoring_rate_when_the_startup_took_the_whole_run():
    """A dask engine's startup timed apart (cluster, model on each worker) can take as long as a small run on a loaded
    machine (11.2 s against 11.1 s on 100 products): the rate once running is then unknown, not 1e11 products/s."""
    import batch

    assert batch.scoring_rate(100, 11.09, 11.21) is None
    assert batch.scoring_rate(100, 11.0, 11.0) is None
    assert batch.scoring_rate(900, 58.25, 2.3) == 16.1  # batch.json's dask_1_worker


def test_load_api_gives_the_model_time_of_the_calls_the_cell_made():
    """The mean model time of a cell is the model-latency histogram's growth over it, read from /metrics before and
    after, which adds up every worker's calls (tests/test_serve.py: several workers): measured with any number of
    workers again (with --workers 2 it was null from 4014660, when each worker's /metrics counted its own calls)."""
    import load_api

    assert load_api.model_ms_mean((12.0, 400.0), (13.0, 420.0)) == 50.0
    assert load_api.model_ms_mean((12.0, 400.0), (12.0, 400.0)) is None  # no call in the cell


def test_load_api_batch_sends_new_products_each_naming_its_own_photo():
    """A batch request of load_api.py (``--workloads batch``) is BATCH_PRODUCTS products, each naming a photo part the
    form holds, every text and photo new to the server's embedding caches, in that request and the next one."""
    import load_api

    catalogue = [{"title": f"mug {i}", "description": "ceramic", "jpeg": b"\xff\xd8pixels\xff\xd9"} for i in range(3)]

    def sent(serial: int) -> tuple[list[dict], dict[str, bytes]]:
        fields = {options["name"]: value for options, _, value in load_api.batch_form(catalogue, serial)._fields}
        return json.loads(fields.pop("products")), fields

    items, photos = sent(0)
    next_items, next_photos = sent(1)
    assert len(items) == load_api.BATCH_PRODUCTS
    assert sorted(item["image"] for item in items) == sorted(photos)
    every_item, every_photo = items + next_items, [*photos.values(), *next_photos.values()]
    assert len({item["title"] for item in every_item}) == len({item["product_id"] for item in every_item}) == 32
    assert len(set(every_photo)) == 32
    assert all(photo.startswith(b"\xff\xd8") and photo.endswith(b"pixels\xff\xd9") for photo in every_photo)
