"""Loaders on the real catalogues and on crafted broken files."""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
import urllib.parse
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prodcat.catalog import FORMATS
from prodcat.catalog.loaders import (
    MAX_TEXT_CHARS,
    CatalogFormatError,
    detect_format,
    issues_for_model,
    load_catalog,
    rakuten_category_names,
)
from prodcat.catalog.schema import COLUMNS, SEP, category_at_level, deeper_level_warning, has_text, split_path
from prodcat.cli import main


def assert_canonical(frame: pd.DataFrame) -> None:
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert frame["product_id"].is_unique
    assert frame["title"].notna().all() and frame["description"].notna().all()
    images = frame["image"].dropna()
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in images)


def test_flipkart(flipkart_dir: Path) -> None:
    catalog = load_catalog(flipkart_dir)
    frame = catalog.frame
    assert catalog.format == "flipkart"
    assert len(frame) == 900
    assert_canonical(frame)
    assert frame["category"].notna().all()
    top = pd.Series(category_at_level(frame["category"], 1))
    assert top.nunique() == 7 and top.value_counts().min() >= 128
    towel = frame.set_index("product_id").loc["7b72c92c2f6c40268628ec5f14c6d590"]
    assert towel["title"] == "Sathiyas Cotton Bath Towel"
    assert split_path(towel["category"])[:3] == ["Baby Care", "Baby Bath & Skin", "Baby Bath Towels"]
    assert (
        Path(towel["image"]).resolve() == (flipkart_dir / "Images" / "7b72c92c2f6c40268628ec5f14c6d590.jpg").resolve()
    )
    assert towel["retail_price"] == 600.0 and towel["brand"] == "Sathiyas"
    # the specification table follows the description as text, and is not kept twice
    assert towel["description"].startswith("Specifications of Sathiyas Cotton Bath Towel")
    assert (
        "\nMachine Washable: Yes; Material: Cotton; Design: Self Design; Brand: Sathiyas; Type: Bath Towel"
        in (towel["description"])
    )
    assert "product_specifications" not in frame.columns
    # the three products without a photo file are kept, photo-less, and reported with their line
    no_photo = frame[frame["image"].isna()]["product_id"].str[:8]
    assert sorted(no_photo) == ["22ac36ba", "994f1d8a", "c4ac93e1"]
    assert [i.field for i in catalog.issues] == ["image"] * 3
    assert {i.product_id[:8] for i in catalog.issues} == set(no_photo)
    # the CSV file itself also loads
    assert len(load_catalog(flipkart_dir / "flipkart_com-ecommerce_sample.csv")) == 900


def test_flipkart_specification_tables_of_every_shape(tmp_path: Path) -> None:
    """Pairs without a key, a lone pair, ``nil``, an empty cell, a damaged hash, or no such column at all."""
    rows = {
        "list": '{"product_specification"=>[{"key"=>"Type", "value"=>"Mug"}, {"value"=>"Pack of 2"}]}',
        "lone": '{"product_specification"=>{"key"=>"Material", "value"=>"Steel"}}',
        "nil": '{"product_specification"=>nil}',
        "empty": "",
        "damaged": '{"product_specification"=>[{"key"=>"Type", "value"=>"Dohar"}, {"key"=>"Colo',
    }
    table = pd.DataFrame(
        {
            "uniq_id": list(rows),
            "product_name": "a product",
            "product_category_tree": '["Kitchen >> Mugs"]',
            "image": "",
            "description": ["Desc.", "", "Desc.", "Desc.", "Desc."],
            "product_specifications": list(rows.values()),
        }
    )
    table.to_csv(tmp_path / "flipkart_com-ecommerce_sample.csv", index=False)
    descriptions = load_catalog(tmp_path, format="flipkart").frame.set_index("product_id")["description"]
    assert descriptions.to_dict() == {
        "list": "Desc.\nType: Mug; Pack of 2",
        "lone": "Material: Steel",
        "nil": "Desc.",
        "empty": "Desc.",
        "damaged": "Desc.\nType; Dohar",  # its quoted words, not its punctuation
    }
    table.drop(columns="product_specifications").to_csv(tmp_path / "flipkart_com-ecommerce_sample.csv", index=False)
    without = load_catalog(tmp_path, format="flipkart").frame["description"]
    assert without.tolist() == ["Desc.", "", "Desc.", "Desc.", "Desc."]


def test_rakuten(rakuten_dir: Path) -> None:
    catalog = load_catalog(rakuten_dir)
    frame = catalog.frame
    assert catalog.format == "rakuten" and catalog.issues == []
    assert len(frame) == 2095 + 1395
    assert_canonical(frame)
    text_rows, photo_rows = frame.iloc[:2095], frame.iloc[2095:]
    assert (text_rows["title"] != "").all()
    assert 0.33 < (text_rows["description"] == "").mean() < 0.37
    assert text_rows["image"].notna().sum() == 440
    assert (photo_rows["title"] == "").all() and photo_rows["image"].notna().all()
    assert frame["category"].nunique() == 27 and frame["prdtypecode"].nunique() == 27
    first = frame.iloc[0]
    assert first["product_id"] == "196547987" and first["prdtypecode"] == 10
    assert first["category"] == "Books > Subcategory Unknown"
    # the name without separator in categories.json is repaired into a two-level path
    cards = frame[frame["prdtypecode"] == 1160]["category"].unique()
    assert list(cards) == [f"Video Games & Consoles{SEP}Game Cards"]
    # French names on request
    french = load_catalog(rakuten_dir, language="fr").frame
    assert french.iloc[0]["category"] == "Livres > Sous-catégorie inconnue"


def test_rakuten_category_names_are_one_to_one(rakuten_dir: Path, tmp_path: Path) -> None:
    for language in ("en", "fr"):
        names = rakuten_category_names(rakuten_dir / "categories.json", language)
        assert len(set(names.values())) == len(names) == 27
        assert all(SEP in name for name in names.values())
    clash = tmp_path / "categories.json"
    clash.write_text(json.dumps({"en": {"1": "A > B", "2": "A > B", "3": "A C"}}))
    assert rakuten_category_names(clash) == {"1": "A > B [1]", "2": "A > B [2]", "3": "A > C"}


def test_rakuten_category_name_of_no_level_is_refused(tmp_path: Path) -> None:
    # a name of blanks or invisible characters alone joins to no path: it was the label None (two: "None [code]")
    empty = tmp_path / "categories.json"
    empty.write_text(json.dumps({"en": {"1": " ", "2": "\u200b > \ufeff", "3": "A > B", "4": ">"}}))
    with pytest.raises(CatalogFormatError, match=r"no level .* for code\(s\) 1, 2$"):
        rakuten_category_names(empty)


def test_rakuten_test_split_and_codes_without_names(tmp_path: Path) -> None:
    for split in ("test", "train"):  # photo folders without the products' photos: normal data
        (tmp_path / "images" / f"image_{split}").mkdir(parents=True)
    (tmp_path / "X_test_update.csv").write_text(",designation,description,productid,imageid\n0,Un livre,,11,22\n")
    catalog = load_catalog(tmp_path)
    assert catalog.frame["category"].isna().all() and catalog.issues == []
    (tmp_path / "X_test_update.csv").unlink()
    (tmp_path / "X_train_update.csv").write_text(",designation,description,productid,imageid\n0,A,,11,22\n1,B,,12,23\n")
    (tmp_path / "Y_train_CVw08PX.csv").write_text(",prdtypecode\n0,10\n1,\n0,2583\n")
    catalog = load_catalog(tmp_path)
    assert list(catalog.frame["category"]) == ["10", None]  # no categories.json: the code is the label
    assert sorted((i.row, i.field, str(i.product_id)) for i in catalog.issues) == [
        (3, "category", "12"),  # no label
        (4, "category", "None"),  # a second, different label for row index 0
    ]
    assert any("row index 0 labelled again: 2583, where the first (10) is kept" in i.message for i in catalog.issues)
    # photo-only rows: a missing photo file and an id already used by a text row are reported by line
    (tmp_path / "image_only_labels.csv").write_text(
        "productid,imageid,prdtypecode,image\n11,5,10,image_5_product_11.jpg\n13,6,10,image_6_product_13.jpg\n"
    )
    catalog = load_catalog(tmp_path)
    assert list(catalog.frame["product_id"]) == ["11", "12", "11~2", "13"]
    assert catalog.frame["image"].iloc[2:].isna().all()
    found = [(i.row, i.field, i.product_id) for i in catalog.issues if "image_only" in i.message]
    assert sorted(found) == [(2, "image", "11~2"), (2, "product_id", "11~2"), (3, "image", "13")]
    # photo-only by design: no issue for their lack of text, but one whose photo is missing has nothing to read
    missing = next(i.message for i in catalog.issues if i.field == "image" and i.product_id == "13")
    assert missing.endswith("; the product has no title or description either: nothing to classify it from")
    assert "first at X_train_update.csv line 2" in next(i.message for i in catalog.issues if i.field == "product_id")


def test_a_rakuten_test_table_given_for_labels_says_where_they_are_read_from(tmp_path: Path) -> None:
    """evaluate (or cv, explore) given the challenge's X_test_update.csv told the user to name the labels' column
    with --category-column, which a Rakuten catalogue refuses: it now says where Rakuten's labels are read from."""
    (tmp_path / "X_test_update.csv").write_text(",designation,description,productid,imageid\n0,Un livre,,11,22\n")
    reason = load_catalog(tmp_path).no_category_read()
    assert reason is not None and "--category-column" not in reason
    assert "X_test_update.csv has no labels" in reason and "Y_train_CVw08PX.csv beside it" in reason
    (tmp_path / "mine.csv").write_text("product_id,title,label\n1,Un livre,Books\n")  # a table: name the column
    assert load_catalog(tmp_path / "mine.csv").no_category_read().endswith("name it with --category-column")


def test_a_flipkart_catalogue_without_categories_says_where_they_are_read_from(tmp_path: Path) -> None:
    """evaluate (or cv, explore) given a Flipkart catalogue whose product_category_tree is empty in every row said
    'if a column holds them, name it with --category-column', which it then refused ('is a flipkart catalogue, whose
    columns are known'): it now names the column Flipkart's labels are read from."""
    (tmp_path / "flipkart_com-ecommerce_sample.csv").write_text(
        "uniq_id,product_name,product_category_tree,image,description\na1,Cycling Shorts,,,Shorts\n"
    )
    reason = load_catalog(tmp_path).no_category_read()
    assert reason == (
        "none of the 1 products read has a category: a Flipkart catalogue reads them from its product_category_tree "
        "column, empty in every row"
    )


def test_a_fashion_catalogue_without_categories_is_read_as_one_to_predict(tmp_path: Path) -> None:
    """A fashion styles.csv whose masterCategory, subCategory and articleType are empty in every row (products to
    predict) failed to load with a traceback, numpy's "ufunc 'add' did not contain a loop" from the building of the
    category tree: prodcat predict stopped there. It is read, its products unlabelled, and a command that needs
    labels names the columns they are read from."""
    (tmp_path / "styles.csv").write_text(
        "id,gender,masterCategory,subCategory,articleType,productDisplayName\n1,Men,,,,Blue Shirt\n2,Women,,,,Red Bag\n"
    )
    catalog = load_catalog(tmp_path)
    assert list(catalog.frame["title"]) == ["Blue Shirt", "Red Bag"] and catalog.frame["category"].isna().all()
    assert catalog.no_category_read() == _NO_FASHION_CATEGORY


#: what a command needing labels says of a fashion catalogue of the two products above none of which has all three
_NO_FASHION_CATEGORY = (
    "none of the 2 products read has a category: a fashion catalogue reads them from its masterCategory, "
    "subCategory and articleType columns, all three given in a row, and no row gives all three"
)


def test_a_fashion_catalogue_with_one_category_column_empty_names_the_three_it_needs(tmp_path: Path) -> None:
    """A styles.csv whose articleType alone is empty in every row, masterCategory and subCategory given, was said to
    have those three columns 'empty in every row', which the user saw filled: a product needs all three."""
    (tmp_path / "styles.csv").write_text(
        "id,gender,masterCategory,subCategory,articleType,productDisplayName\n"
        "1,Men,Apparel,Topwear,,Blue Shirt\n2,Women,Accessories,Bags,,Red Bag\n"
    )
    catalog = load_catalog(tmp_path)
    assert catalog.frame["category"].isna().all()
    assert catalog.no_category_read() == _NO_FASHION_CATEGORY


def test_a_fashion_article_type_spelt_with_other_spacing_is_placed_under_its_usual_parent(tmp_path: Path) -> None:
    """'Casual  Shoes' (two spaces) or 'Casual Shoes' after a zero-width space under 'Apparel > Topwear', beside five
    'Casual Shoes' under 'Footwear > Shoes', was kept under Apparel: the tree was built from the names as written,
    and training, which reads them in one spelling, learnt 'Apparel > Topwear > Casual Shoes' beside 'Footwear > Shoes
    > Casual Shoes', one article type under two parents, with no issue said. Each is placed under its usual parent."""
    rows = [f"{i},Men,Footwear,Shoes,Casual Shoes,Black shoe {i}" for i in range(5)]
    rows += ["10,Men,Apparel,Topwear,Casual  Shoes,Odd shoe", "11,Men,Apparel, Topwear ,\u200bCasual Shoes,Odd shoe 2"]
    (tmp_path / "styles.csv").write_text(
        "id,gender,masterCategory,subCategory,articleType,productDisplayName\n" + "\n".join(rows) + "\n"
    )
    catalog = load_catalog(tmp_path)
    assert set(category_at_level(catalog.frame["category"], None)) == {"Footwear > Shoes > Casual Shoes"}
    moved = [issue for issue in catalog.issues if issue.field == "category"]
    assert [issue.product_id for issue in moved] == ["10", "11"]
    assert "articleType 'Casual Shoes' under 'Apparel > Topwear', but mostly under 'Footwear > Shoes'" in str(moved[0])


def test_a_rakuten_table_whose_index_column_pandas_wrote_back_or_left_out_is_read(tmp_path: Path) -> None:
    """The challenge's index column, read by pandas without index_col and written back with index=False (header
    'Unnamed: 0'), or left out, was refused: "missing column(s) row_index for format 'rakuten'", a name no file has,
    for a test table whose index nothing reads. It is read as the index, or done without where no label is joined."""
    (tmp_path / "images" / "image_test").mkdir(parents=True)
    x_test = tmp_path / "X_test_update.csv"
    x_test.write_text("Unnamed: 0,designation,description,productid,imageid\n84916,Un livre,,11,22\n")
    catalog = load_catalog(tmp_path)
    assert list(catalog.frame["product_id"]) == ["11"] and catalog.issues == []
    assert "Unnamed: 0" not in catalog.frame.columns  # the index, not a column of the product
    x_test.write_text("designation,description,productid,imageid\nUn livre,,11,22\n")
    assert list(load_catalog(tmp_path).frame["product_id"]) == ["11"]
    x_test.unlink()
    (tmp_path / "images" / "image_train").mkdir()
    x_train = tmp_path / "X_train_update.csv"
    x_train.write_text("Unnamed: 0,designation,description,productid,imageid\n0,A,,11,22\n1,B,,12,23\n")
    (tmp_path / "Y_train_CVw08PX.csv").write_text("Unnamed: 0,prdtypecode\n0,10\n1,2583\n")
    assert list(load_catalog(tmp_path).frame["category"]) == ["10", "2583"]
    x_train.write_text("designation,description,productid,imageid\nA,,11,22\nB,,12,23\n")  # labels joined on it
    with pytest.raises(CatalogFormatError, match=r"X_train_update\.csv: no row index") as refused:
        load_catalog(tmp_path)
    assert "row_index" not in str(refused.value)


def test_a_repeated_rakuten_row_index_is_reported(tmp_path: Path) -> None:
    """A row index given twice in X_*.csv was read without a word: a test table's products are keyed by it in a
    submission, and both products of a training table took the one label of that index."""
    for split in ("test", "train"):
        (tmp_path / "images" / f"image_{split}").mkdir(parents=True)
    header = ",designation,description,productid,imageid\n"
    (tmp_path / "X_test_update.csv").write_text(header + "84916,A,,11,1\n84917,B,,12,2\n84916,C,,13,3\n")
    [issue] = load_catalog(tmp_path).issues
    assert (issue.row, issue.field, issue.product_id) == (4, "index", "13")
    assert "row index 84916 repeated (first at line 2)" in issue.message
    (tmp_path / "X_test_update.csv").unlink()
    (tmp_path / "X_train_update.csv").write_text(header + "0,A,,11,1\n0,B,,12,2\n")
    (tmp_path / "Y_train_CVw08PX.csv").write_text(",prdtypecode\n0,10\n")
    catalog = load_catalog(tmp_path)
    assert list(catalog.frame["category"]) == ["10", "10"]
    [issue] = catalog.issues
    assert (issue.row, issue.field, issue.product_id) == (3, "index", "12")
    assert issue.message.endswith("both products are given its label in Y_train_CVw08PX.csv")


def test_a_skipped_rakuten_row_is_named_by_its_productid(tmp_path: Path) -> None:
    """A row of X_test_update.csv the reader skips was named by no product, '(row index 84917)' in its message, where
    the other formats name one by their id. It is named by its productid now, read from the row's end (only imageid
    follows it): a comma too many in the description, or a stray quote on the line, leave it in place. A row whose
    unclosed quote ran on past its line is named by none: the line may end inside the quoted field."""
    (tmp_path / "images" / "image_test").mkdir(parents=True)
    header = ",designation,description,productid,imageid\n"
    rows = ["84916,A,,10,1", "84917,B,a mug, blue,11,1", '84918,"C" mug,,12,2', '84919,"D,,13,3', "84920,E,,14,4"]
    (tmp_path / "X_test_update.csv").write_text(header + "\n".join(rows) + "\n")
    catalog = load_catalog(tmp_path)
    skipped = [(issue.row, issue.product_id) for issue in catalog.issues if issue.field == "row"]
    assert skipped == [(3, "11"), (4, "12"), (5, None)]
    assert not any("row index" in issue.message for issue in catalog.issues)
    assert list(catalog.frame["product_id"]) == ["10", "14"]


def test_a_rakuten_training_table_without_its_labels_file_says_so(tmp_path: Path, caplog, capsys) -> None:
    """X_train_update.csv copied without Y_train_CVw08PX.csv was read unlabelled without a word: train refused with
    'no labelled product with text to learn from', evaluate with 'no labelled products', neither saying why. One
    label issue now names the file (predict, which reads no label, does not list it); a test split has none."""
    (tmp_path / "images" / "image_train").mkdir(parents=True)
    (tmp_path / "X_train_update.csv").write_text(",designation,description,productid,imageid\n0,A,,11,22\n")
    catalog = load_catalog(tmp_path)
    assert catalog.frame["category"].isna().all()
    (issue,) = catalog.issues
    assert (issue.row, issue.field, issue.product_id) == (1, "category", None)
    assert issue.message == (
        f"X_train_update.csv: its labels Y_train_CVw08PX.csv not found in {tmp_path}; every product is read unlabelled"
    )
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m"), "--modalities", "text"]) == 2
    assert "cannot train: no labelled product" in capsys.readouterr().err
    assert any(issue.message in record.getMessage() for record in caplog.records)  # warned of before the refusal


def test_fashion(fashion_dir: Path) -> None:
    catalog = load_catalog(fashion_dir)
    frame = catalog.frame
    assert catalog.format == "fashion" and len(frame) == 6000
    assert_canonical(frame)
    assert frame["image"].notna().all() and (frame["description"] == "").all()
    wallet = frame.set_index("product_id").loc["20586"]
    assert wallet["category"] == "Accessories > Wallets > Wallets"
    assert wallet["title"] == "Baggit Women Highway Taj Purple Wallet"
    assert wallet["usage"] == "Casual" and wallet["gender"] == "Women"  # metadata kept out of the text
    # the source puts a few article types under two parents; the loader makes the paths a tree
    assert frame["category"].nunique() == frame["articleType"].nunique() == 84
    belts = frame[frame["articleType"] == "Belts"]
    assert set(belts["category"]) == {"Accessories > Belts > Belts"} and set(belts["masterCategory"]) == {
        "Accessories",
        "Apparel",
    }
    assert len(catalog.issues) == 17 and {i.field for i in catalog.issues} == {"category", "text"}
    # the two products without a display name keep an empty title rather than being dropped, and are said to be
    # classified from their photo
    untitled = frame.loc[frame["title"] == "", "product_id"].tolist()
    assert len(untitled) == 2
    assert [i.product_id for i in catalog.issues if i.field == "text"] == untitled


def test_detect_format(flipkart_dir: Path, rakuten_dir: Path, fashion_dir: Path, tmp_path: Path) -> None:
    assert detect_format(flipkart_dir) == "flipkart"
    assert detect_format(rakuten_dir) == "rakuten"
    assert detect_format(rakuten_dir / "X_train_update.csv") == "rakuten"
    assert detect_format(fashion_dir) == "fashion"
    assert detect_format(fashion_dir / "styles.csv") == "fashion"
    (tmp_path / "t.csv").write_text("product_id,title\n1,a\n")
    assert detect_format(tmp_path / "t.csv") == "csv"
    with pytest.raises(CatalogFormatError, match="not a known catalogue folder"):
        detect_format(tmp_path)


BROKEN_CSV = (
    "sku,name,text,photo,cat\n"  # line 1
    'A1,"Blue mug\nwith handle",Ceramic,a.jpg,Kitchen/Mugs\n'  # lines 2-3: quoted newline is fine
    "A2,Red mug,too,many,fields,here\n"  # line 4: wrong field count
    'A3,"bad "quote" here",x,a.jpg,Kitchen\n'  # line 5: bad quoting
    "A4,Teapot,,missing.jpg,Kitchen/Teapots\n"  # line 6: unknown image
    "A5,Spoon,steel,,\n"  # line 7: missing label
    "A1,Blue mug again,,,Kitchen/Mugs\n"  # line 8: duplicate id
    'A6,"Unclosed,desc,a.jpg,Kitchen\n'  # line 9: unclosed quote: that line is lost, not the rest
    "A7,Fork,,,Kitchen\n"
)


def test_broken_rows_are_reported_with_their_line(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"not checked here")
    path = tmp_path / "shop.csv"
    path.write_text(BROKEN_CSV)
    catalog = load_catalog(
        path,
        id_column="sku",
        title_column="name",
        description_column="text",
        image_column="photo",
        category_column="cat",
        image_root=tmp_path / "photos",
        category_sep="/",
    )
    frame = catalog.frame.set_index("product_id")
    assert list(frame.index) == ["A1", "A4", "A5", "A1~2", "A7"]
    assert frame.loc["A1", "title"] == "Blue mug\nwith handle"
    assert frame.loc["A1", "category"] == "Kitchen > Mugs"
    assert frame.loc["A1", "image"] == str(tmp_path / "photos" / "a.jpg")
    assert frame.loc["A4", "image"] is None and frame.loc["A5", "category"] is None
    found = {(i.row, i.field) for i in catalog.issues}
    assert found == {(4, "row"), (5, "row"), (6, "image"), (7, "category"), (8, "product_id"), (9, "row")}
    assert "first at line 2" in next(i.message for i in catalog.issues if i.field == "product_id")
    # said 'not used for training' in prodcat evaluate and robustness too, which leave it out of their figures
    assert next(i.message for i in catalog.issues if i.field == "category") == (
        "shop.csv: missing label; the product is kept unlabelled (not trained or evaluated on)"
    )


def test_enormous_fields_keep_their_product_and_are_cut(tmp_path: Path) -> None:
    """A description of 300,000 characters over many lines (the csv module's default limit is 131,072)
    stays one product, cut at MAX_TEXT_CHARS and reported; the products after it are read as they are."""
    line = "Une description très longue. " * 10 + "\n"
    long_text = line * (300_000 // len(line) + 1)
    path = tmp_path / "shop.csv"
    titles, descriptions = ["Lampe", "x" * 200_000, "Chaise"], ["", long_text, "ok"]
    products = pd.DataFrame({"product_id": ["A", "B", "C"], "title": titles, "description": descriptions})
    products.to_csv(path, index=False)
    catalog = load_catalog(path)
    frame = catalog.frame.set_index("product_id")
    assert list(frame.index) == ["A", "B", "C"]
    assert frame.loc["B", "description"] == long_text[:MAX_TEXT_CHARS]
    assert frame.loc["B", "title"] == "x" * MAX_TEXT_CHARS
    assert frame.loc["C", "description"] == "ok"
    cut = {(i.row, i.field, i.product_id) for i in catalog.issues}
    assert cut == {(3, "title", "B"), (3, "description", "B")}
    assert f"{len(long_text):,} characters; the first {MAX_TEXT_CHARS:,} are kept" in " ".join(
        i.message for i in catalog.issues
    )


def test_text_that_is_not_utf8_is_read_line_by_line_as_windows_1252(tmp_path: Path) -> None:
    utf8_rows = "product_id,title,category\nA,Télé couleur,Électronique\nB,Chaise,Maison\n".encode()
    legacy_row = "C,Fauteuil à bascule,Maison\n".encode("cp1252")  # pasted from another export
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(utf8_rows + legacy_row + "D,Théière,Cuisine\n".encode())
    catalog = load_catalog(mixed)
    assert catalog.frame["title"].tolist() == ["Télé couleur", "Chaise", "Fauteuil à bascule", "Théière"]
    assert catalog.frame["category"].tolist()[0] == "Électronique"
    assert [(i.row, i.field) for i in catalog.issues] == [(4, "file")]
    assert "1 line(s) not valid UTF-8 (4); read as Windows-1252" in catalog.issues[0].message

    legacy = tmp_path / "legacy.csv"  # a whole Windows-1252 export
    legacy.write_bytes("product_id,title\nA,Télé\nB,Chaise\nC,Crème\n".encode("cp1252"))
    catalog = load_catalog(legacy)
    assert catalog.frame["title"].tolist() == ["Télé", "Chaise", "Crème"]
    assert "2 line(s) not valid UTF-8 (2, 4)" in catalog.issues[0].message


def test_table_defaults_and_unlabelled(tmp_path: Path) -> None:
    path = tmp_path / "new.csv"
    path.write_text(
        "title,price,ean,ready,model,serial,stock,boxed\n"
        "Lamp,12.5,0012345,true,1E5,12345678901234567890,inf,TRUE\n"
        "Chair,40,4006381,False,2E3,12345678901234567891,3,FALSE\n"
    )
    catalog = load_catalog(path)
    assert catalog.format == "csv" and catalog.issues == []  # unlabelled: no missing-label issues
    assert list(catalog.frame["product_id"]) == ["row-2", "row-3"]
    assert catalog.frame["price"].tolist() == [12.5, 40.0]
    assert catalog.frame["ean"].tolist() == ["0012345", "4006381"]  # a code keeps its leading zeros
    # codes that parse as floats (an exponent, more digits than a float holds, "inf") stay as written
    assert catalog.frame["model"].tolist() == ["1E5", "2E3"]
    assert catalog.frame["serial"].tolist() == ["12345678901234567890", "12345678901234567891"]
    assert catalog.frame["stock"].tolist() == ["inf", "3"]
    assert catalog.frame["ready"].tolist() == [True, False]
    assert catalog.frame["boxed"].tolist() == [True, False]  # any case
    with pytest.raises(CatalogFormatError, match="--title-column"):
        (tmp_path / "bad.csv").write_text("x,y\n1,2\n")
        load_catalog(tmp_path / "bad.csv")
    with pytest.raises(CatalogFormatError, match="no column 'nope'"):
        load_catalog(path, title_column="nope")


def test_a_path_written_without_spaces_around_its_separator_is_a_path(tmp_path: Path) -> None:
    """'Kitchen>Mugs' was one category named 'Kitchen›Mugs', under no 'Kitchen': a top-level model learnt it apart
    from 'Kitchen > Cups'. An explicit --category-sep still splits on itself alone."""
    path = tmp_path / "shop.csv"
    path.write_text(
        "title,category\nmug,Kitchen>Mugs\ncup,Kitchen > Cups\nbowl,Kitchen >> Bowls\nlamp, Home>  Lamps \n"
    )
    assert load_catalog(path).frame["category"].tolist() == [
        "Kitchen > Mugs", "Kitchen > Cups", "Kitchen > Bowls", "Home > Lamps"]  # fmt: skip
    path.write_text("title,category\nmug,Kitchen/Mugs>Tall\n")
    assert load_catalog(path, category_sep="/").frame["category"].tolist() == ["Kitchen > Mugs›Tall"]


def test_invisible_characters_in_a_category_are_not_part_of_it(tmp_path: Path) -> None:
    """'Watches' after a zero-width space (pasted from a web page) or a byte-order mark (two exports concatenated),
    or with a soft hyphen, was a category of its own, learnt beside 'Watches' without a word (no spelling warning
    sees them either); a level of them alone made a category no one can read. They go, as from texts: the level left
    empty is no level, a label left empty is a missing one."""
    path = tmp_path / "shop.csv"
    labels = ["Watches", "\u200bWatches", "\ufeffWatches", "Wat\u00adches > \u200b", "Home > \u200b > Decor", "\u200b"]
    pd.DataFrame({"title": [f"item {i}" for i in range(len(labels))], "category": labels}).to_csv(path, index=False)
    catalog = load_catalog(path)
    assert catalog.frame["category"].tolist() == ["Watches"] * 4 + ["Home > Decor", None]
    assert [str(issue) for issue in catalog.issues] == [
        "row 7 (product row-7), category: shop.csv: missing label; the product is kept unlabelled (not trained or "
        "evaluated on)"
    ]


def test_a_model_trained_before_invisible_characters_left_its_categories_is_scored_in_its_own_spelling(
    tmp_path: Path,
) -> None:
    """A bundle trained on 'Watches' after a zero-width space before the loaders removed it holds and predicts that
    label. The catalogue now reads 'Watches', which evaluate took for a category the model does not know, so each
    product was counted wrong (a fast-text bundle on 400 fashion products: accuracy 1.0 before, 0.745 after). The
    true labels are spelt as the model's label they now read as."""
    from prodcat.catalog.schema import model_truth

    path = tmp_path / "shop.csv"
    labels = ["\u200bWatches > Men", "Watches > Women", "Home\u00ad > Decor", "Kitchen"]
    pd.DataFrame({"title": [f"item {i}" for i in range(len(labels))], "category": labels}).to_csv(path, index=False)
    categories = load_catalog(path).frame["category"]
    old_labels = ["\u200bWatches", "Home\u00ad", "Kitchen", "\u200b"]
    assert model_truth(categories, 1, old_labels).tolist() == [
        "\u200bWatches",
        "\u200bWatches",
        "Home\u00ad",
        "Kitchen",
    ]
    assert model_truth(categories, 1, ["Watches", "Home", "Kitchen"]).tolist() == [
        "Watches",
        "Watches",
        "Home",
        "Kitchen",
    ]


def test_a_level_deeper_than_the_deepest_path_is_warned_of_with_what_is_done_instead() -> None:
    categories = ["Kitchen > Mugs", "Kitchen", None]
    assert deeper_level_warning(categories, 3, "checked") == (
        "level 3 asked, but the categories have 2 level(s): the full paths are checked"
    )
    # a level the paths reach, and the full path (None, or 0 as --level 0), are cut as asked
    assert [deeper_level_warning(categories, level, "predicted") for level in (1, 2, None, 0)] == [None] * 4
    # no category at all (an empty catalogue): 'level 1 asked, but the categories have 0 level(s)' was said before
    # explore's error that there is no labelled product
    assert deeper_level_warning([], 1, "clustered against") is None


def test_parquet(flipkart_dir: Path, tmp_path: Path) -> None:
    frame = load_catalog(flipkart_dir).frame
    table = pd.DataFrame(
        {
            "id": frame["product_id"],
            "name": frame["title"],
            "description": frame["description"],
            "photo": frame["image"].map(lambda p: os.path.basename(p) if p else None),
            "tree": frame["category"].str.replace(SEP, "|"),
        }
    )
    table.loc[5, "id"] = table.loc[4, "id"]
    path = tmp_path / "catalogue.parquet"
    table.to_parquet(path)
    catalog = load_catalog(
        path,
        id_column="id",
        title_column="name",
        image_column="photo",
        category_column="tree",
        category_sep="|",
        image_root=flipkart_dir / "Images",
    )
    assert catalog.format == "parquet" and len(catalog) == 900
    assert (catalog.frame["category"] == frame["category"]).all()
    assert (catalog.frame["image"].fillna("") == frame["image"].fillna("")).all()
    assert {(i.row, i.field) for i in catalog.issues if i.field == "product_id"} == {(6, "product_id")}
    assert sum(i.field == "image" for i in catalog.issues) == 0  # the 3 photo-less rows name no file here


def test_parquet_integer_ids_and_codes_with_gaps_stay_integers(tmp_path: Path) -> None:
    """An int64 column with a null would become float64 in pandas: ids lose digits, codes read "10.0"."""
    path = tmp_path / "codes.parquet"
    ids, codes = pa.array([12345678901234567, 2, None], pa.int64()), pa.array([10, None, 2583], pa.int64())
    pq.write_table(pa.table({"product_id": ids, "title": ["a", "b", "c"], "category": codes}), path)  # as Spark writes
    catalog = load_catalog(path)
    assert catalog.frame["product_id"].tolist() == ["12345678901234567", "2", "row-3"]
    assert catalog.frame["category"].tolist() == ["10", None, "2583"]


def test_parquet_whole_numbers_stored_as_floats_read_as_integers(tmp_path: Path) -> None:
    """pandas stores an integer id or code column with a gap as float64: its ids were read "1.0", "2.0" (no longer
    the catalogue's, so predictions did not join back on them) and its codes "10.0", a category apart from "10"."""
    path = tmp_path / "from_pandas.parquet"
    table = pd.DataFrame({"product_id": [1, 2, None, 4], "title": list("abcd"), "category": [10, 2583, 10, None]})
    table["weight"] = [1.5, 2.0, None, 3.0]  # a column prodcat does not map keeps its type
    table.to_parquet(path)
    assert table["product_id"].dtype == float
    catalog = load_catalog(path)
    assert catalog.frame["product_id"].tolist() == ["1", "2", "row-3", "4"]
    assert catalog.frame["category"].tolist() == ["10", "2583", "10", None]
    assert catalog.frame["weight"].tolist()[:2] == [1.5, 2.0]
    table.assign(product_id=[1.5, 2.0, 3.0, 4.0]).to_parquet(path)  # not whole numbers: kept as written
    assert load_catalog(path).frame["product_id"].tolist() == ["1.5", "2.0", "3.0", "4.0"]


def test_an_unclosed_quote_loses_its_own_line_only(tmp_path: Path) -> None:
    """The reader takes every line after an unclosed quote into its field; those lines are read again."""
    path = tmp_path / "shop.csv"
    path.write_text('product_id,title\nA,ok\nB,"unclosed\nC,kept\nD,"two\nlines"\nE,kept too\n')
    catalog = load_catalog(path)
    assert catalog.frame["product_id"].tolist() == ["A", "C", "D", "E"]
    assert catalog.frame["title"].tolist() == ["ok", "kept", "two\nlines", "kept too"]
    assert catalog.lines == [2, 4, 5, 7]
    (issue,) = catalog.issues
    assert (issue.row, issue.field, issue.product_id) == (3, "row", "B")
    assert "in line 3, whose quoted field ran on to line 5 (an unclosed quote?); line 3 skipped" in issue.message


def test_many_unclosed_quotes_each_cost_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stray opening quote on every 10th product of 5,000 (inch marks written as `"32 inch TV`): the
    other products are all read, each stray line reported, and the csv reader is handed no line more than twice
    (once inside the run-on field of the stray quote above it, once as its own record): the work of a clean file,
    counted rather than timed."""
    from prodcat.catalog import tables

    handed: list[int] = []
    hand_out = tables._Lines.__next__

    def counted(lines: tables._Lines) -> str:
        line = hand_out(lines)
        handed.append(lines.position)
        return line

    monkeypatch.setattr(tables._Lines, "__next__", counted)
    rows = [f'P{i},"{i} inch TV,x' if i % 10 == 0 else f"P{i},Lamp {i},y" for i in range(5000)]
    path = tmp_path / "shop.csv"
    path.write_text("product_id,title,description\n" + "\n".join(rows) + "\n")
    catalog = load_catalog(path)
    assert catalog.frame["product_id"].tolist() == [f"P{i}" for i in range(5000) if i % 10]
    assert [issue.product_id for issue in catalog.issues] == [f"P{i}" for i in range(0, 5000, 10)]
    assert set(handed) == set(range(1, 5002)) and max(Counter(handed).values()) == 2


def test_a_native_catalogue_copied_apart_from_its_photos_finds_them_under_image_root(
    flipkart_dir: Path, fashion_dir: Path, tmp_path: Path
) -> None:
    """A Flipkart or fashion CSV moved away from its photo folder: ``image_root`` points at the photos."""
    for source, name, photos in (
        (flipkart_dir, "flipkart_com-ecommerce_sample.csv", flipkart_dir / "Images"),
        (fashion_dir, "styles.csv", fashion_dir / "images"),
    ):
        copy = tmp_path / source.name
        copy.mkdir()
        (copy / name).write_bytes((source / name).read_bytes())
        alone = load_catalog(copy / name).frame
        found = load_catalog(copy / name, image_root=photos).frame
        original = load_catalog(source).frame
        assert alone["image"].isna().all(), source.name
        assert found["image"].tolist() == original["image"].tolist()
        assert found["image"].notna().mean() > 0.99
    with pytest.raises(CatalogFormatError, match="--title-column, --category-sep apply to CSV/Parquet"):
        load_catalog(flipkart_dir, title_column="name", category_sep="/")


def test_every_table_option_reaches_a_table_and_is_refused_by_its_flag_for_a_native_format(tmp_path: Path) -> None:
    """load_catalog hands each column option and the category separator to the table reader, and names each one as
    its command-line option when a catalogue of known columns is given it."""
    options = {
        "id_column": "sku",
        "title_column": "name",
        "description_column": "about",
        "image_column": "photo",
        "category_column": "cat",
        "category_sep": "/",
    }
    table = tmp_path / "products.csv"
    table.write_text("sku,name,about,photo,cat\nA1,Tee,Soft cotton,,Apparel/Tops\n")
    frame = load_catalog(table, **options).frame
    assert frame[["product_id", "title", "description", "category"]].values.tolist() == [
        ["A1", "Tee", "Soft cotton", "Apparel > Tops"]
    ]
    styles = tmp_path / "styles.csv"
    styles.write_text("id,masterCategory,subCategory,articleType,productDisplayName\n1,Apparel,Topwear,Tshirts,Tee\n")
    flags = "--id-column, --title-column, --description-column, --image-column, --category-column, --category-sep"
    with pytest.raises(CatalogFormatError, match=f"is a fashion catalogue, whose columns are known: {flags} apply"):
        load_catalog(styles, **options)


@pytest.mark.parametrize("fmt", ["fashion", "csv"])
def test_an_image_root_that_is_no_folder_is_refused(tmp_path: Path, fmt: str) -> None:
    """A mistyped --image-root was read as a folder without photos: every product lost its photo, each reported
    as not found (a CSV), or silently where the photo is implied by the id (fashion, Rakuten), and the model
    answered from the text alone, exit 0."""
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "1.jpg").write_bytes(b"checked by the decoder, not here")
    if fmt == "fashion":
        path = tmp_path / "styles.csv"
        path.write_text("id,masterCategory,subCategory,articleType,productDisplayName\n1,Apparel,Topwear,Tshirts,Tee\n")
    else:
        path = tmp_path / "products.csv"
        path.write_text("product_id,title,image\n1,Tee,1.jpg\n")
    assert load_catalog(path, image_root=tmp_path / "photos").frame["image"].notna().all()
    for root, what in ((tmp_path / "phtos", "no such folder"), (path, "not a folder")):
        with pytest.raises(CatalogFormatError, match=f"--image-root {re.escape(str(root))}: {what}"):
            load_catalog(path, image_root=root)


def test_a_native_catalogue_without_its_photo_folder_says_so(tmp_path: Path) -> None:
    """fashion's and Rakuten's photos are implied by the id, so a missing one is normal data; but a copy of the
    table without its photo folder lost every photo without a word, and a model reading photos answered from
    the text alone. One issue now names the folder."""
    fashion = tmp_path / "styles.csv"
    fashion.write_text("id,masterCategory,subCategory,articleType,productDisplayName\n1,Apparel,Topwear,Tshirts,Tee\n")
    catalog = load_catalog(fashion)
    assert catalog.frame["image"].isna().all()
    assert [(issue.row, issue.field) for issue in catalog.issues] == [(1, "image")]
    assert f"photo folder {tmp_path / 'images'} not found" in catalog.issues[0].message
    (tmp_path / "images").mkdir()  # photos missing one by one: normal data, no issue
    assert load_catalog(fashion).issues == []


def test_a_flipkart_table_without_its_photo_folder_says_so_once(tmp_path: Path) -> None:
    """Flipkart's table names each photo, looked for in Images/ beside it: a copy of the table alone gave one issue
    per product ('photo file ... not found under .../Images'), none saying that the folder is missing nor how to
    point at it. One issue now names the folder, with --image-root, as for fashion and Rakuten; photos missing one
    by one from a folder that is there are still named one by one."""
    flipkart = tmp_path / "flipkart_com-ecommerce_sample.csv"
    rows = [f'p{i},Mug {i},"[""Kitchen >> Mugs""]",p{i}.jpg,A mug' for i in range(3)]
    flipkart.write_text("uniq_id,product_name,product_category_tree,image,description\n" + "\n".join(rows) + "\n")
    catalog = load_catalog(flipkart)
    assert catalog.frame["image"].isna().all() and len(catalog) == 3
    (issue,) = catalog.issues
    assert (issue.row, issue.field, issue.product_id) == (1, "image", None)
    assert f"photo folder {tmp_path / 'Images'} not found" in issue.message and "--image-root" in issue.message
    (tmp_path / "Images").mkdir()
    (tmp_path / "Images" / "p1.jpg").write_bytes(b"checked by the decoder, not here")
    assert [issue.product_id for issue in load_catalog(flipkart).issues] == ["p0", "p2"]


def test_a_utf16_export_is_read_as_text_not_as_bytes(tmp_path: Path) -> None:
    """Excel's "Unicode text": UTF-16 with a byte-order mark, tab-separated."""
    table = "product_id\ttitle\tdescription\timage\tcategory\nsku-1\tThéière en fonte\tÉmaillée\t\tCuisine > Thé\n"
    for encoding in ("utf-16", "utf-16-be"):
        path = tmp_path / f"{encoding}.txt"
        bom = "\ufeff" if encoding == "utf-16-be" else ""  # Python's utf-16 writes its own
        path.write_bytes((bom + table).encode(encoding))
        frame = load_catalog(path).frame
        assert frame[["product_id", "title", "description", "category"]].values.tolist() == [
            ["sku-1", "Théière en fonte", "Émaillée", "Cuisine > Thé"]
        ]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_utf16_export_without_byte_order_mark_is_read_as_text(tmp_path: Path, encoding: str) -> None:
    """UTF-16 with no byte-order mark (SQL Server's bcp -w, .NET's Encoding.Unicode) was read as UTF-8: one column
    name with a zero byte between its letters, refused as 'no title, description or image column among
    p\x00r\x00o\x00...'; a Flipkart table so written was not recognised as Flipkart."""
    table = "product_id,title,description,image,category\nsku-1,Théière en fonte,Émaillée,,Cuisine > Thé\n"
    path = tmp_path / "products.csv"
    path.write_bytes(table.encode(encoding))
    catalog = load_catalog(path)
    assert catalog.frame[["product_id", "title", "description", "category"]].values.tolist() == [
        ["sku-1", "Théière en fonte", "Émaillée", "Cuisine > Thé"]
    ]
    assert catalog.issues == []
    flipkart = tmp_path / "export.csv"
    flipkart.write_bytes("uniq_id,product_name,product_category_tree,image,description\n".encode(encoding))
    assert detect_format(flipkart) == "flipkart"


def test_an_issue_names_the_product_by_the_id_it_is_predicted_under(tmp_path: Path) -> None:
    """A repeated id becomes ``id~2``: the missing photo of that second product is reported under it too."""
    path = tmp_path / "products.csv"
    path.write_text("product_id,title,image\na1,mug,\na1,teapot,teapot.jpg\n")
    catalog = load_catalog(path)
    assert catalog.frame["product_id"].tolist() == ["a1", "a1~2"]
    photo = next(issue for issue in catalog.issues if issue.field == "image")
    assert (photo.row, photo.product_id) == (3, "a1~2")


def test_the_format_given_chooses_the_reader_whatever_the_extension(tmp_path: Path) -> None:
    exported = tmp_path / "export.dat"
    pd.DataFrame({"product_id": ["a"], "title": ["mug"]}).to_parquet(exported)
    assert load_catalog(exported, format="parquet").frame["title"].tolist() == ["mug"]
    misnamed = tmp_path / "text.parquet"
    misnamed.write_text("product_id,title\na,mug\n")
    assert load_catalog(misnamed, format="csv").frame["title"].tolist() == ["mug"]
    with pytest.raises(CatalogFormatError, match="not a readable Parquet file"):
        load_catalog(misnamed)


def test_a_parquet_table_with_a_column_name_twice_is_refused_naming_it(tmp_path: Path) -> None:
    """pyarrow's refusal ('Multiple matches for FieldRef.Name(title) in product_id: string ...') printed the whole
    schema, its own hidden columns included, over a dozen lines."""
    path = tmp_path / "products.parquet"
    names = ["product_id", "title", "title", "category", "category"]
    pq.write_table(pa.Table.from_arrays([pa.array(["a"])] * 5, names=names), path)
    with pytest.raises(CatalogFormatError) as refused:
        load_catalog(path)
    assert str(refused.value) == (
        f"{path}: more than one column named 'category', 'title': rename them (a CSV's are read as name, name.1, ...)"
    )


def test_a_parquet_table_with_a_corrupt_page_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    """pyarrow raises a corrupt page (its header here; a snappy block says 'Corrupt snappy compressed data.') as an
    OSError with no errno, which ended every command in a traceback, exit 1."""
    path = tmp_path / "products.parquet"
    pd.DataFrame({"product_id": ["a", "b"], "title": ["mug", "lamp"], "category": ["Kitchen", "Home"]}).to_parquet(path)
    data = bytearray(path.read_bytes())
    page = pq.ParquetFile(path).metadata.row_group(0).column(1).data_page_offset
    data[page : page + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    with pytest.raises(CatalogFormatError, match=r"products\.parquet: not a readable Parquet file \(Couldn't deser"):
        load_catalog(path)
    assert main(["audit", str(path), "--report", str(tmp_path / "report")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {path}: not a readable Parquet file (") and error.count("\n") == 1


def test_a_missing_photo_is_named_as_the_catalogue_gives_it(tmp_path: Path) -> None:
    """A relative name is looked for under the image root, an absolute path as it is: the message says which. When
    no photo of the table is found, the relative ones were likely named from another folder: the message of each
    names --image-root (it named none, and every product lost its photo, each 'not found' only)."""
    path = tmp_path / "products.csv"
    absolute = tmp_path / "elsewhere" / "lamp.jpg"
    path.write_text(f"title,image,category\nLamp,{absolute},Home\nChair,photos/chair.jpg,Home\n")
    first, second = (issue.message for issue in load_catalog(path).issues)
    assert f"photo file '{absolute}' not found;" in first and " under " not in first
    hint = "(--image-root names the folder holding them)"
    assert f"photo file 'photos/chair.jpg' not found under {tmp_path} {hint};" in second
    absolute.parent.mkdir()
    absolute.write_bytes(b"a photo found: the table's photos are where it says")
    (issue,) = load_catalog(path).issues
    assert f"photo file 'photos/chair.jpg' not found under {tmp_path};" in issue.message


def test_a_photo_path_written_with_windows_backslashes_finds_its_file(tmp_path: Path) -> None:
    """A table made on Windows names its photos 'photos\\lamp.jpg': on Linux no such file, so every product was read
    without its photo ('not found'), though photos/lamp.jpg is there. Read with slashes when only so does it name a
    file; a file whose name holds the backslash is still taken as named."""
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "lamp.jpg").write_bytes(b"a photo")
    (tmp_path / "photos\\chair.jpg").write_bytes(b"a file named so")
    path = tmp_path / "products.csv"
    path.write_text(
        "title,image,category\nLamp,photos\\lamp.jpg,Home\nChair,photos\\chair.jpg,Home\nSofa,photos\\sofa.jpg,Home\n"
    )
    catalog = load_catalog(path)
    assert catalog.frame["image"].tolist() == [
        str(tmp_path / "photos" / "lamp.jpg"),
        str(tmp_path / "photos\\chair.jpg"),
        None,
    ]
    (issue,) = catalog.issues
    assert f"photo file 'photos\\\\sofa.jpg' not found under {tmp_path};" in issue.message


def test_a_missing_photo_of_a_catalogue_given_by_a_relative_path_names_its_folder(tmp_path: Path, monkeypatch) -> None:
    """The image root of ``products.csv`` is ``.``: the message names the folder, not ``.``."""
    (tmp_path / "products.csv").write_text("title,image,category\nChair,photos/chair.jpg,Home\n")
    monkeypatch.chdir(tmp_path)
    (issue,) = load_catalog(Path("products.csv")).issues
    assert f"photo file 'photos/chair.jpg' not found under {tmp_path} (--image-root" in issue.message


def test_a_photo_path_naming_a_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    path = tmp_path / "products.csv"
    path.write_text("product_id,title,image\na,Lamp,photos\n")
    catalog = load_catalog(path)
    assert catalog.frame["image"].tolist() == [None] and catalog.frame["title"].tolist() == ["Lamp"]
    (issue,) = catalog.issues
    assert (issue.row, issue.field, issue.product_id) == (2, "image", "a")
    assert f"photo path 'photos' under {tmp_path} is a directory, not a file;" in issue.message


def test_a_photo_path_naming_a_broken_link_says_so(tmp_path: Path) -> None:
    """A link to a deleted photo, or a loop of links, was reported as 'not found', though `ls` lists it."""
    (tmp_path / "loop-a.jpg").symlink_to("loop-b.jpg")
    (tmp_path / "loop-b.jpg").symlink_to("loop-a.jpg")
    (tmp_path / "moved.jpg").symlink_to(tmp_path / "deleted.jpg")
    path = tmp_path / "products.csv"
    path.write_text("product_id,title,image\na,Lamp,loop-a.jpg\nb,Mug,moved.jpg\n")
    catalog = load_catalog(path)
    assert catalog.frame["image"].tolist() == [None, None] and catalog.frame["title"].tolist() == ["Lamp", "Mug"]
    for issue, name in zip(catalog.issues, ["loop-a.jpg", "moved.jpg"], strict=True):
        assert f"photo path {name!r} under {tmp_path} is a symbolic link to no file" in issue.message


def test_a_photo_path_naming_a_device_or_a_pipe_says_so(tmp_path: Path) -> None:
    """/dev/zero was reported as 'not found', and a link to it as 'a symbolic link to no file', though both are
    there: neither is a file, and none is read (reading /dev/zero or a FIFO would never end)."""
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    path = tmp_path / "products.csv"
    path.write_text("product_id,title,image\na,Lamp,/dev/zero\nb,Mug,zero.jpg\nc,Vase,pipe.jpg\n")
    catalog = load_catalog(path)
    assert catalog.frame["image"].tolist() == [None] * 3 and catalog.frame["title"].tolist() == ["Lamp", "Mug", "Vase"]
    messages = [issue.message for issue in catalog.issues]
    assert [issue.row for issue in catalog.issues] == [2, 3, 4]
    assert "photo path '/dev/zero' is a device, pipe or socket, not a file;" in messages[0]
    for message, name in zip(messages[1:], ["zero.jpg", "pipe.jpg"], strict=True):
        assert f"photo path {name!r} under {tmp_path} is a device, pipe or socket, not a file;" in message


def test_a_product_without_text_is_said_to_be_classified_from_its_photo_or_from_nothing(tmp_path: Path) -> None:
    """A product with neither title nor description (or markup alone) was classified from its photo unsaid, and
    one whose photo is not found either was said to be 'classified from its text'. A table without text columns
    (photos alone) is not expected to have any."""
    (tmp_path / "a.jpg").write_bytes(b"a photo")
    path = tmp_path / "products.csv"
    path.write_text(
        "product_id,title,description,image\n"
        "lamp,Lamp,,a.jpg\n"
        "photo-only,,,a.jpg\n"
        "markup-only,<b>&nbsp;</b>,<p></p>,a.jpg\n"
        "mug,Mug,,gone.jpg\n"
        "nothing,,,gone.jpg\n"
    )
    issues = {(i.row, i.product_id, i.field): i.message for i in load_catalog(path).issues}
    photo_alone = "products.csv: no title or description: classified from its photo"
    not_found = f"products.csv: photo file 'gone.jpg' not found under {tmp_path}; "
    assert issues == {
        (3, "photo-only", "text"): photo_alone,
        (4, "markup-only", "text"): photo_alone,
        (5, "mug", "image"): not_found + "the product is kept without a photo: classified from its text",
        (6, "nothing", "image"): f"{not_found}the product has no title or description either: nothing to classify "
        "it from",
    }
    path.write_text("product_id,image\nlamp,a.jpg\n")
    assert load_catalog(path).issues == []


def test_a_product_left_with_a_modality_the_model_does_not_read_is_said_to_have_nothing_to_classify(
    tmp_path: Path,
) -> None:
    """The loader says a product without text is classified from its photo, and one whose photo is not found from
    its text: for a model that does not read that modality, each has nothing to classify it from."""
    (tmp_path / "a.jpg").write_bytes(b"a photo")
    path = tmp_path / "products.csv"
    path.write_text("product_id,title,description,image\nphoto-only,,,a.jpg\nmug,Mug,,gone.jpg\n")
    issues = load_catalog(path).issues
    assert issues_for_model(issues, ("text", "image")) == issues
    text_model = {issue.product_id: issue.message for issue in issues_for_model(issues, ("text",))}
    photo_model = {issue.product_id: issue.message for issue in issues_for_model(issues, ("image",))}
    assert text_model["photo-only"] == (
        "products.csv: no title or description: nothing to classify it from, as this model does not read photos"
    )
    assert photo_model["mug"].endswith(
        "the product is kept without a photo: nothing to classify it from, as this model does not read text"
    )
    # and each keeps the loader's words for a model that reads what it has left
    assert text_model["mug"].endswith("the product is kept without a photo: classified from its text")
    assert photo_model["photo-only"] == "products.csv: no title or description: classified from its photo"


def _classified_from(left_with: list[str], read_by: tuple[str, ...]) -> str:
    """How the issue of a product left with the modalities ``left_with`` ends, for a model reading ``read_by``."""
    if not left_with:
        return "; the product has no title or description either: nothing to classify it from"
    (modality,) = left_with
    if modality in read_by:
        return {"text": ": classified from its text", "image": ": classified from its photo"}[modality]
    return ": nothing to classify it from, as this model does not read " + {"text": "text", "image": "photos"}[modality]


#: products (product_id, title, description, image) of every way a loader leaves one with a single modality, or none
_LEFT_WITH_ONE_MODALITY = [
    ("lamp", "Lamp", "", "a.jpg"),
    ("photo-only", "", "", "a.jpg"),
    ("markup-only", "<b>&nbsp;</b>", "<p></p>", "a.jpg"),
    ("mug", "Mug", "", "gone.jpg"),
    ("vase", "", "A vase", "https://cdn.example.com/vase.jpg"),
    ("chair", "Chair", "", "photos"),
    ("nothing", "", "", "gone.jpg"),
]
#: and in Parquet, a photo's own bytes in the image column
_PHOTO_BYTES = [("jug", "Jug", "", b"\xff\xd8\xff\xe0" + b"\x00" * 16), ("png-alone", "", "", b"\x89PNG\r\n\x1a\n")]


@pytest.mark.parametrize("read_by", [("text", "image"), ("text",), ("image",)])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_each_issue_leaving_a_product_with_one_modality_says_what_the_model_classifies_it_from(
    tmp_path: Path, fmt: str, read_by: tuple[str, ...]
) -> None:
    """Whatever its words, the issue that leaves a product with its text alone (a photo not found, a URL, a
    directory, a photo's bytes in a Parquet image column) or its photo alone (no title or description) ends saying
    what a model reading ``read_by`` classifies it from: that modality or, for a model not reading it, nothing. The
    rewording matched the end of the loader's message: an issue worded otherwise kept 'classified from its photo'
    for a model not reading photos, unnoticed; the Parquet one said 'kept without a photo' and nothing more."""
    (tmp_path / "a.jpg").write_bytes(b"a photo")
    (tmp_path / "photos").mkdir()
    path = tmp_path / f"products.{fmt}"
    columns = ["product_id", "title", "description", "image"]
    if fmt == "csv":
        pd.DataFrame(_LEFT_WITH_ONE_MODALITY, columns=columns).to_csv(path, index=False)
    else:
        rows = [(*row[:3], row[3].encode()) for row in _LEFT_WITH_ONE_MODALITY] + _PHOTO_BYTES
        pq.write_table(pa.Table.from_pandas(pd.DataFrame(rows, columns=columns)), path)
    catalog = load_catalog(path)
    frame = catalog.frame.set_index("product_id")
    has = pd.DataFrame({"text": has_text(catalog.frame), "image": frame["image"].notna().to_numpy()}, frame.index)
    modality_of = {"title": "text", "description": "text", "text": "text", "image": "image"}
    said = {}
    for issue in issues_for_model(catalog.issues, read_by):
        modalities = has.loc[issue.product_id]
        if issue.field in modality_of and not modalities[modality_of[issue.field]]:  # an issue of what it lacks
            said[issue.product_id] = (issue.message, _classified_from(list(modalities.index[modalities]), read_by))
    assert set(said) == set(frame.index) - {"lamp"}
    assert [message for message, ending in said.values() if not message.endswith(ending)] == []


def test_a_photo_given_as_a_url_says_it_is_one(tmp_path: Path) -> None:
    """A web URL's issue told the user to 'download them and give their paths', with their own downloader: it names
    the command that does, and the catalogue keeps each such URL, by product, for it."""
    path = tmp_path / "products.csv"
    path.write_text("product_id,title,image\na,Lamp,https://cdn.example.com/lamp.jpg\nb,Mug,ftp://host/mug.jpg\n")
    catalog = load_catalog(path)
    assert catalog.frame["image"].tolist() == [None, None] and catalog.frame["title"].tolist() == ["Lamp", "Mug"]
    lamp, mug = (issue.message for issue in catalog.issues if issue.field == "image")
    assert (
        "photo 'https://cdn.example.com/lamp.jpg' is a URL: photos are read from files; prodcat fetch-photos "
        "downloads them and writes a catalogue naming their files; the product is kept without a photo"
    ) in lamp
    assert "photo 'ftp://host/mug.jpg' is a URL: photos are read from files, download them and give their paths" in mug
    assert catalog.photo_urls == {"a": "https://cdn.example.com/lamp.jpg"}  # by product id: http(s) ones only


def test_photos_given_as_flipkarts_list_of_urls_are_its_first_url(tmp_path: Path) -> None:
    """Flipkart's own export gives a product's photos as a JSON list of URLs, and has no Images folder: it was read
    as a copy of the sample without its photo folder ('photo folder Images not found'), no URL kept. The first URL of
    the list is the product's photo URL now, said to be one, which prodcat fetch-photos downloads."""
    first, second = "http://img5a.flixcart.com/image/a/b/mug-1.jpeg", "http://img6a.flixcart.com/image/a/b/mug-2.jpeg"
    cell = json.dumps([first, second]).replace('"', '""')
    (tmp_path / "flipkart_com-ecommerce_sample.csv").write_text(
        "uniq_id,product_name,product_category_tree,image,description\n"
        f'm1,Ceramic mug,"[""Kitchen >> Mugs""]","{cell}",350 ml\n'
        'm2,Steel mug,"[""Kitchen >> Mugs""]",,500 ml\n',
        encoding="utf-8",
    )
    catalog = load_catalog(tmp_path)
    assert catalog.format == "flipkart" and catalog.photo_urls == {"m1": first}
    (issue,) = catalog.issues
    assert issue.product_id == "m1" and issue.message.startswith(
        f"flipkart_com-ecommerce_sample.csv: photo '{first}' (the first of the list given) is a URL: photos are read "
        "from files; prodcat fetch-photos downloads them"
    )


def test_a_photo_given_as_a_file_url_is_read_from_its_path(tmp_path: Path) -> None:
    """A file:// URL names a file of this machine: it was refused as any URL ('is a URL: photos are read from files,
    download them and give their paths'), the product read without its photo. Another host's is a URL still."""
    (tmp_path / "my photos").mkdir()
    (tmp_path / "my photos" / "lamp.jpg").write_bytes(b"a photo")
    lamp = f"file://{urllib.parse.quote(str(tmp_path / 'my photos' / 'lamp.jpg'))}"
    gone = f"file://localhost{tmp_path / 'gone.jpg'}"
    path = tmp_path / "products.csv"
    path.write_text(f"product_id,title,image\na,Lamp,{lamp}\nb,Vase,{gone}\nc,Mug,file://server/mug.jpg\n")
    catalog = load_catalog(path)
    assert catalog.frame["image"].tolist() == [str(tmp_path / "my photos" / "lamp.jpg"), None, None]
    vase, mug = (issue.message for issue in catalog.issues)
    assert f"photo file '{gone}' not found;" in vase
    assert "photo 'file://server/mug.jpg' is a URL: photos are read from files" in mug


def test_a_photo_named_file_colon_without_slashes_is_a_file_under_the_image_root(tmp_path: Path) -> None:
    """c5d4b79 read any name of the file scheme as a URL, so file:mug.jpg (a legal file name, no '//') named the
    file mug.jpg of the current folder rather than file:mug.jpg beside the table: not found."""
    (tmp_path / "file:mug.jpg").write_bytes(b"a photo")
    path = tmp_path / "products.csv"
    path.write_text("product_id,title,image\na,Mug,file:mug.jpg\n")
    catalog = load_catalog(path)
    assert catalog.frame["image"].tolist() == [str(tmp_path / "file:mug.jpg")] and not catalog.issues


def test_parquet_columns_of_other_types_are_read_as_text_and_their_problems_reported(tmp_path: Path) -> None:
    """Numbers as photo names, bytes that are not UTF-8, a photo's own bytes in the image column, a list of
    words: every product is kept, each problem is an issue of its row (none fails the catalogue)."""
    path = tmp_path / "typed.parquet"
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 16
    table = pa.table(
        {
            "product_id": pa.array([b"a", b"b", b"c", b"d"], pa.binary()),
            "title": pa.array([["blue", "mug"], None, ["lamp"], None], pa.list_(pa.string())),
            "description": pa.array([b"caf\xc3\xa9", b"\xff\xfe latin", None, b"ok"], pa.binary()),
            "image": pa.array([None, jpeg, None, b"3"], pa.binary()),
        }
    )
    pq.write_table(table, path)
    catalog = load_catalog(path)
    frame = catalog.frame
    assert frame["product_id"].tolist() == ["a", "b", "c", "d"]
    assert frame["title"].tolist() == ["blue mug", "", "lamp", ""]
    assert frame["description"].tolist() == ["café", "\ufffd\ufffd latin", "", "ok"]
    assert frame["image"].tolist() == [None, None, None, None]
    issues = {(issue.row, issue.field, issue.product_id): issue.message for issue in catalog.issues}
    assert set(issues) == {(2, "description", "b"), (2, "image", "b"), (4, "image", "d")}
    assert "not UTF-8" in issues[2, "description", "b"]
    assert "holds the 20 bytes of a JPEG photo, not a photo file path" in issues[2, "image", "b"]
    assert f"photo file '3' not found under {tmp_path}" in issues[4, "image", "d"]
    integers = tmp_path / "integers.parquet"
    pq.write_table(pa.table({"title": ["mug", "lamp"], "image": pa.array([7, None], pa.int64())}), integers)
    catalog = load_catalog(integers)  # an integer photo column: a name like any other, not a crash
    assert catalog.frame["image"].tolist() == [None, None]
    assert [(issue.row, issue.field) for issue in catalog.issues] == [(1, "image")]


def test_a_photos_bytes_in_a_parquet_table_without_ids_are_an_issue_of_its_product(tmp_path: Path) -> None:
    """Without an id column, the issue of a photo's bytes in the image column named no product (the others name
    row-<line>), and since 342e06d, which takes an issue naming none for the table's missing photo folder, it no
    longer said the product is kept, classified from its text."""
    path = tmp_path / "without-ids.parquet"
    pq.write_table(pa.table({"title": ["mug"], "image": pa.array([b"\xff\xd8\xff\xe0"], pa.binary())}), path)
    [issue] = load_catalog(path).issues
    assert issue.product_id == "row-1"
    assert issue.message.endswith(
        "holds the 4 bytes of a JPEG photo, not a photo file path; the product is kept without a photo: "
        "classified from its text"
    )


def test_a_csv_with_carriage_returns_alone_as_line_ends_is_read(tmp_path: Path) -> None:
    """Excel's "CSV (Macintosh)" ends lines with \\r alone: the csv reader reads it, and so must the format
    detection, which read the whole file as one header line and failed with the csv module's error."""
    path = tmp_path / "mac.csv"
    path.write_bytes(b'product_id,title,description\rm1,blue shirt,cotton\rm2,steel watch,"two\rlines"\r')
    catalog = load_catalog(path)
    assert catalog.format == "csv" and not catalog.issues
    assert catalog.frame["product_id"].tolist() == ["m1", "m2"]
    assert catalog.frame["description"].tolist() == ["cotton", "two\rlines"]


def test_a_carriage_return_inside_a_text_does_not_shift_line_numbers(tmp_path: Path) -> None:
    """A lone \\r inside a quoted description (56 of Flipkart's descriptions hold one) was counted as a line end:
    every later row was reported on a line below the one grep -n, sed and editors show (775 of Flipkart's 900
    products, up to 56 lines off), its bad rows, NUL bytes and Windows-1252 lines too. A lone \\r ends a line only
    in a file without \\n (Excel's "CSV (Macintosh)"), whose lines are still numbered by it."""
    path = tmp_path / "shop.csv"
    path.write_bytes(
        b"product_id,title,description\n"
        b'm1,blue shirt,"cotton\rwashable\r"\n'
        b'm2,"steel" watch,x\n'  # bad quoting: skipped
        b"m3,red mug,ceramic,extra\n"  # a field too many: skipped
        b'm4,lamp,"two\nlines"\n'
        b"m5,caf\xe9 mug,x\x00y\n"  # Windows-1252 and a NUL byte
    )
    catalog = load_catalog(path)
    assert catalog.frame["product_id"].tolist() == ["m1", "m4", "m5"]
    assert catalog.lines == [2, 5, 7]
    assert [(issue.row, issue.field) for issue in catalog.issues] == [(3, "row"), (4, "row"), (7, "file"), (7, "file")]
    assert "in line 3; row skipped" in catalog.issues[0].message
    mac = tmp_path / "mac.csv"
    mac.write_bytes(b'product_id,title\rm1,"blue\rshirt"\rm2,"steel" watch\rm3,mug\r')
    catalog = load_catalog(mac)
    assert catalog.frame["product_id"].tolist() == ["m1", "m3"]
    assert catalog.lines == [2, 5] and [issue.row for issue in catalog.issues] == [4]


def test_nul_bytes_are_removed_and_reported(tmp_path: Path) -> None:
    """NUL bytes (a damaged copy) were kept without a word: in an id, the product was predicted under an id with
    an invisible character, unlike the catalogue's; in the header, 'ti\\x00tle' was no title column, so every
    product lost its title silently."""
    path = tmp_path / "shop.csv"
    path.write_bytes(b"product_id,ti\x00tle\nm1\x00,Blue mug\nm2,Red mug\n")
    catalog = load_catalog(path)
    assert catalog.frame[["product_id", "title"]].values.tolist() == [["m1", "Blue mug"], ["m2", "Red mug"]]
    assert [(issue.row, issue.field) for issue in catalog.issues] == [(1, "file")]
    assert "2 line(s) hold NUL bytes (1, 2), removed" in catalog.issues[0].message


def test_canonical_columns_headed_in_capitals_are_read(tmp_path: Path) -> None:
    """A spreadsheet's header 'Product_ID, Title, Description, IMAGE, Category' was refused by every command ('no
    title, description or image column among Product_ID, Title, ...'). Read as the canonical columns now; a column
    of the exact name wins over one in other case, which stays a column of the source's."""
    (tmp_path / "mug.png").write_bytes(b"not read here")
    path = tmp_path / "shop.csv"
    path.write_text("Product_ID,Title,Description,IMAGE,Category\nm1,Blue mug,Tall,mug.png,Kitchen > Mugs\n")
    catalog = load_catalog(path)
    assert catalog.frame.loc[0, list(COLUMNS)].tolist() == [
        "m1",
        "Blue mug",
        "Tall",
        str(tmp_path / "mug.png"),
        "Kitchen > Mugs",
    ]
    path.write_text("product_id,Title,title\nm1,Blue mug (old),Blue mug\n")
    catalog = load_catalog(path)
    assert catalog.frame.loc[0, ["title", "Title"]].tolist() == ["Blue mug", "Blue mug (old)"]


def test_blank_lines_before_the_header_are_skipped(tmp_path: Path) -> None:
    """Blank lines above the header (as pandas skips them) were taken for the header: 'no title, description or
    image column among ;' (nothing named), and the separator was sniffed from the blank line (',')."""
    path = tmp_path / "shop.csv"
    path.write_text("\n  \r\nproduct_id;title;category\nm1;Blue mug;Kitchen\nm2,x;Red mug;Kitchen\n")
    catalog = load_catalog(path)
    assert catalog.frame[["product_id", "title"]].values.tolist() == [["m1", "Blue mug"], ["m2,x", "Red mug"]]
    assert catalog.lines == [4, 5]
    path.write_text("\n \n\n")
    with pytest.raises(CatalogFormatError, match="the file is empty"):
        load_catalog(path)


@pytest.mark.parametrize("separator", [";", ",", "\t", "|"])
def test_excels_separator_line_above_the_header_names_the_separator(tmp_path: Path, separator: str) -> None:
    """Excel's ``sep=;`` line above the header (an export meant for Excel where lists take semicolons) was taken for
    the header: 'no title, description or image column among sep=, ' (exit 2), the table unread. It names the
    separator, as in Excel, and is no part of the table; lines keep their numbers in the file."""
    path = tmp_path / "shop.csv"
    rows = [["product_id", "title", "category"], ["m1", "Blue mug, tall", "Kitchen"], ["m2", "Red mug", "Kitchen"]]
    lines = [f"sep={separator}", *(separator.join(f'"{field}"' for field in row) for row in rows), "m3"]
    path.write_text("\r\n".join(lines) + "\r\n")
    catalog = load_catalog(path)
    assert catalog.frame[["product_id", "title"]].values.tolist() == [["m1", "Blue mug, tall"], ["m2", "Red mug"]]
    assert catalog.lines == [3, 4]
    assert [(issue.row, issue.field) for issue in catalog.issues] == [(5, "row")]


@pytest.mark.parametrize("format", FORMATS)
def test_a_device_given_as_the_catalogue_is_refused_before_it_is_read(format: str) -> None:
    """/dev/zero with --format csv (or flipkart, fashion, rakuten) was read until memory ran out (7 GB in 20 s), a
    FIFO waited for a writer forever; by auto-detection one was 'no such file or folder' though it is there. /dev/null
    stands for them here: it ends at once, so the loader before this check failed with another message."""
    with pytest.raises(CatalogFormatError) as refused:
        load_catalog("/dev/null", format)
    assert str(refused.value) == (
        "/dev/null: a device, pipe or socket, not a file or folder: save the catalogue to a file and give its path"
    )


@pytest.mark.skipif(not Path("/proc/self/mem").is_file(), reason="needs Linux's /proc/self/mem")
@pytest.mark.parametrize("format", ["auto", "csv"])
def test_a_catalogue_that_opens_but_does_not_read_is_refused_naming_why(format: str, tmp_path: Path, capsys) -> None:
    """/proc/self/mem opens, then fails every read from its start (Input/output error), as a catalogue on a failing
    disk or a dropped network share does: every command ended in a traceback (exit 1)."""
    with pytest.raises(CatalogFormatError, match=r"^/proc/self/mem: cannot be read \(Input/output error\)$"):
        load_catalog("/proc/self/mem", format)
    assert main(["audit", "/proc/self/mem", "--format", format, "--report", str(tmp_path / "audit")]) == 2
    assert capsys.readouterr().err == "error: /proc/self/mem: cannot be read (Input/output error)\n"


@pytest.mark.parametrize("separator", [",", "\t"])
def test_lines_of_spaces_or_tabs_are_blank_lines_not_skipped_products(tmp_path: Path, separator: str) -> None:
    """A line of spaces or tabs between products (a trailing one, left by an editor) was reported as a skipped
    product ('1 fields where the header has 2', no product id) and counted among the rows skipped by predict,
    train, cv and explore; in a TSV, a line of one tab was even read as a product without id or text. Such a
    line is blank, as an empty one is: no product, no issue."""
    path = tmp_path / "shop.csv"
    path.write_text(f"product_id{separator}title\nm1{separator}Blue mug\n   \n\t\n \t \r\nm2{separator}Red mug\n \n")
    catalog = load_catalog(path)
    assert catalog.frame[["product_id", "title"]].values.tolist() == [["m1", "Blue mug"], ["m2", "Red mug"]]
    assert catalog.lines == [2, 6]
    assert catalog.issues == []


def test_a_spreadsheets_empty_row_is_no_product(tmp_path: Path) -> None:
    """An empty row of a spreadsheet, saved as CSV (a line of separators alone: ',,') or as Parquet (no value in any
    column), was read as a product named after its line, with no text and no photo, where an empty line is none.
    It is skipped as a blank line is: no product, no issue."""
    csv_path = tmp_path / "shop.csv"
    csv_path.write_text("product_id,title,image\nm1,Blue mug,\n,,\n , ,\t\n\nm2,Red mug,\n,,\n")
    parquet_path = tmp_path / "shop.parquet"
    pd.DataFrame(
        {"product_id": pd.array([1, None, None, 2], dtype="Int64"), "title": ["Blue mug", None, " ", "Red mug"]}
    ).to_parquet(parquet_path)
    for path, lines in ((csv_path, [2, 6]), (parquet_path, [1, 4])):
        catalog = load_catalog(path)
        assert catalog.frame["title"].tolist() == ["Blue mug", "Red mug"]
        assert catalog.lines == lines
        assert catalog.issues == []


def test_a_header_with_bad_quoting_is_refused_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    path.write_text('product_id,"title\na,mug\n')
    with pytest.raises(CatalogFormatError, match=r"the header \(line 1\) has bad quoting"):
        load_catalog(path)


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "a ZIP archive (an Excel .xlsx workbook?)"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "an Excel .xls workbook"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "an image (PNG), not a table"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", "an image (AVIF), not a table"),  # was "a AVIF image"
        (b"\x1f\x8b\x08\x00product_id,title", "gzip-compressed"),
        # random bytes (an encrypted or truncated download) were 'no title, description or image column among'
        # a column name of the bytes themselves
        (np.random.default_rng(0).bytes(3000), "unknown binary data (13% of its first bytes are control"),
    ],
)
def test_a_file_that_is_no_text_table_is_refused_naming_what_it_is(tmp_path: Path, content: bytes, found: str) -> None:
    """A workbook or a photo given for a CSV: one line saying what it is, not its bytes as column names."""
    path = tmp_path / "products.csv"
    path.write_bytes(content)
    with pytest.raises(CatalogFormatError, match="not a CSV file") as refused:
        load_catalog(path)
    assert found in str(refused.value) and "\ufffd" not in str(refused.value)


@pytest.mark.parametrize("orient", ["records", "lines", "columns"])
def test_a_json_export_is_refused_saying_it_is_json(tmp_path: Path, orient: str) -> None:
    """A JSON export (pandas' to_json, an API's dump) given as the catalogue was read as CSV: 'no title,
    description or image column among [' or 'the header (line 1) has bad quoting', whatever its columns."""
    table = pd.DataFrame({"product_id": ["a1", "a2"], "title": ["Blue mug", "Red mug"], "category": ["K", "K"]})
    path = tmp_path / "products.json"
    lines = orient == "lines"
    path.write_text(table.to_json(orient="records" if lines else orient, lines=lines, indent=None if lines else 2))
    with pytest.raises(CatalogFormatError, match="not a CSV file: its content is JSON") as refused:
        load_catalog(path)
    assert "pandas.read_json" in str(refused.value)


def test_a_header_starting_like_a_binary_signature_is_still_a_table(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text("BMW_id,title\nb1,M3 brake pads\n")  # "BM" also starts a bitmap
    assert load_catalog(path, id_column="BMW_id").frame["title"].tolist() == ["M3 brake pads"]


def test_a_csv_typed_with_a_space_after_each_comma_is_read(tmp_path: Path) -> None:
    """'product_id, title, image': the header's names and the photo names lose the space, not the product."""
    (tmp_path / "mug.jpg").write_bytes(b"not checked here")
    path = tmp_path / "shop.csv"
    path.write_text("product_id, title, image\nm1, Blue mug, mug.jpg\n")
    catalog = load_catalog(path)
    assert not catalog.issues
    assert catalog.frame[["product_id", "image"]].values.tolist() == [["m1", str(tmp_path / "mug.jpg")]]
    assert catalog.frame["title"].str.strip().tolist() == ["Blue mug"]


def test_columns_under_other_names_are_warned_of_not_silently_left_unread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A shop's own CSV (sku, name, desc, photo, cat) read with --title-column name alone was predicted from the
    titles only, its products named row-2, row-3, ... and its descriptions and photos left out, without a word."""
    path = tmp_path / "shop.csv"
    path.write_text("sku,name,desc,photo,cat\nS1,Blue mug,Ceramic,mug.jpg,Kitchen\n")
    with caplog.at_level("WARNING", logger="prodcat"):
        catalog = load_catalog(path, title_column="name")
    assert catalog.frame["product_id"].tolist() == ["row-2"]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "no product_id, description, image or category column" in warning
    assert "named row-<line>, without a description, without a photo, unlabelled" in warning
    assert "the columns sku, desc, photo, cat are not read" in warning
    assert "if one holds such a field, name it with --id-column, --description-column, --image-column or " in warning

    caplog.clear()
    (tmp_path / "texts.csv").write_text("product_id,title,category,price\nt1,Blue mug,Kitchen,4.5\n")
    with caplog.at_level("WARNING", logger="prodcat"):
        load_catalog(tmp_path / "texts.csv")
    assert (
        "no description or image column, so its products are read without a description, without a photo; "
        "the column price is not read: if one holds such a field, name it with --description-column or "
        "--image-column" in caplog.text
    )

    caplog.clear()
    with caplog.at_level("WARNING", logger="prodcat"):  # every field named: nothing to say
        load_catalog(
            path,
            id_column="sku",
            title_column="name",
            description_column="desc",
            category_column="cat",
            image_column="photo",
        )
        # canonical columns and other ones (price), unlabelled as products to predict are: nothing to say either
        (tmp_path / "new.csv").write_text("product_id,title,description,image,price\nn1,Red mug,,,4.5\n")
        load_catalog(tmp_path / "new.csv")
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "not read" in r.getMessage()]


def test_a_table_of_thousands_of_unread_columns_is_warned_of_in_one_readable_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A table of 20,000 columns none of which is canonical but the title was warned of with every one named: one
    log line of some 150 kB. The warning names the first ten and counts the others."""
    path = tmp_path / "wide.csv"
    columns = [f"attribute_{i}" for i in range(20_000)]
    path.write_text(",".join(["name", *columns]) + "\n" + ",".join(["Blue mug", *["x"] * len(columns)]) + "\n")
    with caplog.at_level("WARNING", logger="prodcat"):
        load_catalog(path, title_column="name")
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"the columns {', '.join(columns[:10])} and 19,990 more are not read" in warning
    assert len(warning) < 1_000


def test_the_other_columns_of_a_csv_are_typed_each_by_all_its_values(tmp_path: Path) -> None:
    """Each column not read as a field is typed by all its values, blanks aside: a column of plain numbers with a blank
    is of floats (NaN there), one of blanks only too, true/false in any case is boolean, and one value of
    another kind (a space before "false", a word) leaves the whole column text, its blanks missing."""
    path = tmp_path / "typed.csv"
    path.write_text("title,count,gap,price,empty,ready,padded,note\nmug,3,1,+.5,,TRUE, false,x\npot,4,,2.,  ,,true,\n")
    frame = load_catalog(path).frame
    assert frame["count"].dtype == np.int64 and frame["count"].tolist() == [3, 4]
    assert frame["gap"].dtype == np.float64 and frame["gap"].iloc[0] == 1.0 and np.isnan(frame["gap"].iloc[1])
    assert frame["price"].tolist() == [0.5, 2.0]
    assert frame["empty"].dtype == np.float64 and frame["empty"].isna().all()
    assert frame["ready"].dtype == "boolean" and frame["ready"].tolist() == [True, pd.NA]
    assert frame["padded"].dtype == object and frame["padded"].tolist() == [" false", "true"]
    assert frame["note"].tolist() == ["x", None]
    assert list(frame.columns[len(COLUMNS) :]) == ["count", "gap", "price", "empty", "ready", "padded", "note"]


def _pandas_calls(read: Callable[[], object]) -> int:
    """The calls of pandas' own Python functions while ``read`` runs: a measure of work that no load on the machine
    changes, as it changes a time. Not the steps of its iterators, which any loop over a table's header takes."""
    calls = 0
    pandas_code = f"{os.sep}pandas{os.sep}"

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        code = frame.f_code
        calls += event == "call" and pandas_code in code.co_filename and not code.co_flags & inspect.CO_GENERATOR

    sys.setprofile(count)
    try:
        read()
    finally:
        sys.setprofile(None)
    return calls


def test_the_pandas_work_of_reading_a_csv_does_not_grow_with_its_columns(tmp_path: Path) -> None:
    """Each column not read as a field was typed by pandas calls of its own (3 ms a column): a 300 KB CSV of 100,000
    empty columns took 298 s to read. Its columns are now typed all at once: a table of 1,000 such columns (blank,
    numbers, text) costs pandas no more calls than one of 12 (before: 1.4 million, 60 times as many)."""

    def wide(columns: int) -> Path:
        path = tmp_path / f"wide{columns}.csv"
        names = [f"attribute_{i}" for i in range(columns)]
        rows = [
            ["Blue mug", *["", "1", "x", "2.5"] * (columns // 4)],
            ["Red cup", *["", "", "y", "3"] * (columns // 4)],
        ]
        path.write_text("\n".join(",".join(row) for row in [["title", *names], *rows]) + "\n")
        return path

    narrow, broad = wide(12), wide(1_000)
    assert _pandas_calls(lambda: load_catalog(broad)) < 2 * _pandas_calls(lambda: load_catalog(narrow))


def test_rakutens_own_parent_and_child_classes_train_without_the_nested_categories_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every Rakuten run warned that 'Video Games & Consoles > Video Games' (code 40) is the parent of '... > Video
    Games > PC Video Games' (2905), advising --level 2 (merging 2905 into 40) or to correct labels that are
    categories.json's own. Both are classes of the source's taxonomy: train and cv no longer warn of them, and the
    same paths in a user's table, where the parent may be a path stopping short, still are."""
    rakuten = tmp_path / "rakuten"
    (rakuten / "images" / "image_train").mkdir(parents=True)
    names = {"40": "Jeux > Jeux vidéo", "2905": "Jeux > Jeux vidéo > Jeux PC", "10": "Livres > Revues"}
    (rakuten / "categories.json").write_text(json.dumps({"en": names}))
    words = {"40": "console game cartridge", "2905": "windows pc game download", "10": "monthly magazine issue"}
    rows = [(code, f"{text} {i}") for code, text in words.items() for i in range(8)]
    x = pd.DataFrame([(title, "", 100 + n, 500 + n) for n, (_, title) in enumerate(rows)])
    x.columns = ["designation", "description", "productid", "imageid"]
    x.to_csv(rakuten / "X_train_update.csv")
    pd.DataFrame({"prdtypecode": [int(code) for code, _ in rows]}).to_csv(rakuten / "Y_train_CVw08PX.csv")
    assert load_catalog(rakuten).taxonomy == frozenset(names.values())
    config = str(Path(__file__).resolve().parents[1] / "configs" / "fast-text.yaml")
    common = ["--config", config, "--level", "0", "--modalities", "text"]
    assert main(["train", str(rakuten), *common, "--out", str(tmp_path / "m")]) == 0
    assert main(["cv", str(rakuten), *common, "--folds", "2", "--report", str(tmp_path / "cv")]) == 0
    out = capsys.readouterr().out
    assert "predicting the full category path: 3 categories" in out and "parent of the other" not in out
    assert "warnings" not in json.loads((tmp_path / "cv" / "metrics.json").read_text())  # none at all
    table = pd.DataFrame({"product_id": range(len(rows)), "title": [title for _, title in rows]})
    table["category"] = [names[code] for code, _ in rows]
    table.to_csv(tmp_path / "mine.csv", index=False)
    assert main(["train", str(tmp_path / "mine.csv"), *common, "--out", str(tmp_path / "m2")]) == 0
    assert "warning: 1 pair of categories where one is the parent of the other ('Jeux > Jeux vidéo' above" in (
        capsys.readouterr().out
    )


def test_a_skipped_csv_row_is_named_by_its_id_column_wherever_it_is(tmp_path: Path) -> None:
    """A skipped row was named by its first field, a title when the id column was not first: 'row 3 (product Lamp)'.
    It is named by its field of the id column now, the canonical one or the one --id-column gives; by none when the
    table has no id column (its products are row-<line>), or when a quote before the id may hold a separator."""
    path = tmp_path / "h.csv"
    rows = ["Mug,sku-1,ok", "Lamp,sku-2,bad,extra", 'Vase,sku-3,"bad"quote', '"Big, blue",sku-4,"bad"quote', "Cup"]
    for header, options in (("title,product_id,description", {}), ("title,sku,description", {"id_column": "sku"})):
        path.write_text("\n".join([header, *rows]) + "\n")
        skipped = [(i.row, i.product_id) for i in load_catalog(path, **options).issues if i.field == "row"]
        assert skipped == [(3, "sku-2"), (4, "sku-3"), (5, None), (6, None)]
    path.write_text("title,description\nMug,ok\nLamp,bad,extra\n")
    assert [(i.row, i.product_id) for i in load_catalog(path).issues] == [(3, None)]


def test_a_skipped_csv_row_is_named_by_its_id_counted_from_the_nearer_end(tmp_path: Path) -> None:
    """An id column after the free texts was read counting fields from the row's start: a comma too many in the
    description named the row by another field ('row 3 (product  blue)'). It is counted from the row's end where
    fewer columns follow the id than precede it; a bad quote that ran on past its line names none from there."""
    path = tmp_path / "t.csv"

    def skipped() -> list[tuple[int, str | None]]:
        return [(i.row, i.product_id) for i in load_catalog(path).issues if i.field == "row"]

    path.write_text('title,description,product_id\nMug,ok,sku-1\nLamp,red, blue,sku-2\nVase,"x" y,sku-3\n')
    assert skipped() == [(3, "sku-2"), (4, "sku-3")]
    path.write_text('title,description,product_id\nMug,"ok,sku-1\nLamp,red,sku-2\n')
    assert skipped() == [(2, None)]


def test_a_skipped_row_with_fewer_fields_names_its_id_counted_from_the_start(tmp_path: Path) -> None:
    """An id column followed by fewer columns than precede it is counted from the row's end (a comma too many in a
    description), but a row with fewer fields than the header lacks its last cells or was cut short: counted from its
    end, 'cup,blue cup,sku-2' under 'title,description,product_id,price' was named 'blue cup', another product's
    text, where the row is sku-2's. It is counted from the start, as before the end was counted."""
    path = tmp_path / "t.csv"
    rows = ["mug,white mug,sku-1,9.99", "cup,blue cup,sku-2", "lamp,red, blue,sku-3,4.50", "vase,tall vase,sku-4,3.00"]
    path.write_text("title,description,product_id,price\n" + "\n".join(rows) + "\n")
    skipped = [(i.row, i.product_id) for i in load_catalog(path).issues if i.field == "row"]
    assert skipped == [(3, "sku-2"), (4, "sku-3")]


def test_a_skipped_row_with_a_field_too_many_past_its_id_is_named_by_its_id(tmp_path: Path) -> None:
    """A row with a field too many is named by its id counted from the edge of the row nearer the id column: right
    for a comma too many in a text, but a field too many on the other side of the id was taken for it. A trailing comma
    after 'title,description,product_id,price' named the row by its price ('product 5.00'), a field after Rakuten's
    productid by that field, a trailing comma by its imageid. The row is named by the field shaped as the ids read are
    ('sku-N', digits), and followed by one shaped as the next column's values, the nearer edge's among equals."""
    path = tmp_path / "t.csv"
    rows = [
        "mug,white mug,sku-1,9.99",
        "lamp,desk lamp,sku-3,5.00,",
        "jug,big jug,sku-4,EXTRA,6.00",
        "cup,red, blue,sku-5,2.50",
    ]
    path.write_text("title,description,product_id,price\n" + "\n".join(rows) + "\nvase,tall vase,sku-6,3.00\n")
    skipped = [(i.row, i.product_id) for i in load_catalog(path).issues if i.field == "row"]
    assert skipped == [(3, "sku-3"), (4, "sku-4"), (5, "sku-5")]

    (tmp_path / "rakuten" / "images" / "image_test").mkdir(parents=True)
    rows = ["0,A,,10,1", "1,B,,11,2,", "2,C,,12,x,3", "3,D,a mug, blue,13,4", "4,E,,14,5"]
    header = ",designation,description,productid,imageid\n"
    (tmp_path / "rakuten" / "X_test_update.csv").write_text(header + "\n".join(rows) + "\n")
    skipped = [(i.row, i.product_id) for i in load_catalog(tmp_path / "rakuten").issues if i.field == "row"]
    assert skipped == [(3, "11"), (4, "12"), (5, "13")]


def test_a_large_catalogue_is_said_to_be_read_before_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command reading a catalogue of SAID_READING_FROM bytes or more says so first: a million products were read
    for 87 s with nothing printed; a small one is read without the line."""
    import argparse

    from prodcat.catalog import loaders

    path = tmp_path / "big.csv"
    path.write_text("product_id,title\nsku-1,Ceramic mug\n", encoding="utf-8")
    args = argparse.Namespace(data=str(path), format="auto", **dict.fromkeys(loaders.READING_OPTIONS))
    said: list[str] = []
    reading = loaders.load_catalog

    def load(*given: object, **options: object) -> object:
        said.extend(record.getMessage() for record in caplog.records)  # what was said before the read
        return reading(*given, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(loaders, "load_catalog", load)
    monkeypatch.setattr(loaders, "SAID_READING_FROM", path.stat().st_size)
    with caplog.at_level("INFO", logger="prodcat"):
        assert len(loaders.load_from_args(args)) == 1
    assert said == [f"reading {path} (0 MB) ..."]

    said.clear()
    caplog.clear()
    monkeypatch.setattr(loaders, "SAID_READING_FROM", path.stat().st_size + 1)
    with caplog.at_level("INFO", logger="prodcat"):
        loaders.load_from_args(args)
    assert said == []


def test_a_csv_is_cut_into_lines_as_the_csv_reader_reads_them() -> None:
    """The CSV's lines, no longer cut by io.StringIO (a copy of the text at 4 bytes a character), are cut as it cut
    them: at \\n, \\r\\n and a lone \\r, not at the other line breaks of str.splitlines."""
    import io

    from prodcat.catalog.tables import _record_lines

    for text in [
        "",
        "a",
        "a\n",
        "a\r\nb",
        "a\rb\r",
        "\r\n\r\n",
        "\r\r\n\n",
        "a\x85b\u2028c\x0cd\x1ce\n",
        'x,"y\r\nz"\r',
    ]:
        assert _record_lines(text) == io.StringIO(text, newline="").readlines(), repr(text)


def test_a_parquet_row_of_any_whitespace_alone_is_blank_as_str_strip_finds_it() -> None:
    """Arrow-backed text cells are found blank without making each a Python string: by the rule of str.strip, every
    whitespace character of Python's included (\\x1c, \\u3000 ...), and none of the others (a zero-width space)."""
    from prodcat.catalog.tables import _blank_cells

    cells = ["", " ", "\x1c\u3000\t", " a ", "\u200b", None, "x", "\u2028 ", "\r\nb", " \x85"]
    expected = [isinstance(cell, str) and not cell.strip() for cell in cells]
    for dtype in ("str", "string", object):
        assert _blank_cells(pd.Series(cells, dtype=dtype)).tolist() == expected, dtype


def test_a_lone_carriage_return_between_two_records_gives_each_its_own_line(tmp_path: Path) -> None:
    """A \\n file holding a lone \\r outside quotes (``a,Mug,x.jpg\\rb,Cup,``): the csv reader, pandas and spreadsheets
    read two rows there, and so does prodcat, but both were numbered line 2: the photo issue naming that line crashed
    ``prodcat predict`` ("The truth value of a Series is ambiguous"). The record after such a \\r starts a line of its
    own, the later lines numbered after it; a \\r inside a quoted text still counts for nothing, \\r\\n ends a line."""
    path = tmp_path / "shop.csv"
    path.write_bytes(
        b"product_id,title,image\n"
        b"a,Mug,x.jpg\rb,Cup,\n"
        b"c,Lamp,y.jpg\r\n"
        b'd,"two\rlines",\n'
        b"e,Jug,z\x00.jpg,extra\n"  # a NUL byte and a field too many: skipped
    )
    catalog = load_catalog(path)
    assert catalog.frame["product_id"].tolist() == ["a", "b", "c", "d"]
    assert catalog.lines == [2, 3, 4, 5]
    assert sorted((issue.row, issue.field, issue.product_id) for issue in catalog.issues) == [
        (2, "image", "a"),
        (4, "image", "c"),
        (6, "file", None),
        (6, "row", "e"),
    ]
    assert all(issue.message.endswith("classified from its text") for issue in catalog.issues if issue.row in (2, 4))


def test_a_line_not_utf8_past_a_lone_carriage_return_is_named_by_its_rows_line(tmp_path: Path) -> None:
    """Past a lone \\r ending a row of a \\n file each row has a line of its own (the test above), but the lines read
    as Windows-1252 were still numbered as grep -n numbers them: the issue named the row before the bad one (3 where
    c, line 4, is Windows-1252), and the whole grep -n line was read as Windows-1252, garbling the UTF-8 row before the
    \\r ('ThÃ©iÃ¨re'). Each row's line is read and numbered on its own now, as NUL bytes are; a \\r inside a quoted
    text still counts for nothing."""
    path = tmp_path / "shop.csv"
    path.write_bytes(
        b"product_id,title,image\n"
        b"a,Mug,x.jpg\rb,Cup,y.jpg\n"
        b"c,Caf\xe9,z.jpg\n"  # Windows-1252: line 4
        b"d,Th\xc3\xa9i\xc3\xa8re,\re,Cr\xe8me,\n"  # UTF-8, then Windows-1252 past a lone \r: line 6
        b'f,"Jug\rcaf\xe9",\n'  # Windows-1252 in a quoted text holding a \r: line 7
    )
    catalog = load_catalog(path)
    assert catalog.frame["product_id"].tolist() == ["a", "b", "c", "d", "e", "f"]
    assert catalog.lines == [2, 3, 4, 5, 6, 7]
    (legacy,) = [issue for issue in catalog.issues if issue.field == "file"]
    assert legacy.row == 4 and "3 line(s) not valid UTF-8 (4, 6, 7); read as Windows-1252" in legacy.message
    assert catalog.frame["title"].tolist() == ["Mug", "Cup", "Café", "Théière", "Crème", "Jug\rcafé"]
