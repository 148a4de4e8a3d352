"""The config's fields and its parts' as nested parameters (``early__C``): the classifier's ``config__`` parameters,
for scikit-learn's searches."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import check_set_params

from prodcat.catalog.loaders import load_catalog
from prodcat.catalog.schema import category_at_level
from prodcat.config import Config, ConfigError, FeatureSpec, HeadConfig, config_parameters, config_with
from prodcat.models.classifier import ProductClassifier


def test_a_configs_fields_and_its_parts_are_named_as_nested_parameters_and_changed_on_a_new_config() -> None:
    """What the classifier's ``config__`` parameters are made of: every field of a config's parts by name (a head or an
    extractor by its name, a vote's member by its position), changed on a new config validated whole, sharing no
    part with the one changed or with a part given, a misspelt name answered with the field it may stand for (a
    config file's ``c: 5`` too, where difflib found nothing near ``C``)."""
    config = Config()
    named = config_parameters(config)
    assert named["early__members__1__members__1__C"] == 20.0  # the vote's logistic regression
    assert named["heads__text_tfidf__features__tfidf__params__title_weight"] == 0.5
    assert named["heads__image_effnet"] is config.heads[4] and named["seed"] == 0
    two = Config(heads=[HeadConfig(name="t", modality="text", features=[{"name": "tfidf"}, {"name": "tfidf"}])])
    assert "heads__t__features__1__params" in config_parameters(two)  # one extractor twice: by position

    head = config.heads[0]
    changed = config_with(
        config,
        {
            "early__members__0__C": 2,
            "heads__text_tfidf__features__tfidf__params__word_min_df": 2,
            "heads__4__C": 3,
            "heads__text_usem3": head.model_copy(update={"name": "words"}),
            "heads__words__C": 7,
        },
    )
    assert (changed.early.members[0].C, changed.heads[4].C) == (2, 3)
    assert changed.heads[0].features[0].params == {"title_weight": 0.5, "word_min_df": 2}
    assert (changed.heads[1].name, changed.heads[1].C, head.C) == ("words", 7, 5)
    assert config == Config() and changed.heads[0] is not config.heads[0]
    assert config_with(changed, config_parameters(changed)) == changed

    for name, said in [
        ("early__c", "early__c: unknown field; did you mean early__C?"),
        ("heads__text_tfdif__C", "heads__text_tfdif__C: unknown item; did you mean heads__text_tfidf?"),
        ("sead", "sead: unknown field; did you mean seed?"),
        ("seed__x", "seed__x: seed has no fields"),
        ("early__members__0__members__0", "early__members__0__members__0: early__members__0__members has no items"),
    ]:
        with pytest.raises(ValueError, match=rf"^invalid parameter\(s\) {name} for the config: {re.escape(said)}$"):
            config_with(config, {name: 1})
    with pytest.raises(ConfigError, match=r"^config: heads\.0\.features\.0\.params: tfidf takes no 'min_dff'.*"):
        config_with(config, {"heads__text_tfidf__features__tfidf__params__min_dff": 2})
    with pytest.raises(ConfigError, match=r"; did you mean word_min_df\?$"):
        config_with(config, {"heads__text_tfidf__features__tfidf__params__min_dff": 2})
    with pytest.raises(ValidationError, match=r"heads\.1\.C\n.*C must be greater than 0"):
        config_with(config, {"heads__text_usem3__C": -1})
    with pytest.raises(ValidationError, match=r"early\.c\n  unknown field; did you mean C\?"):
        Config.model_validate({"early": {"classifier": "nbsvm", "c": 5}})
    assert config == Config()


def test_the_fields_of_the_configs_parts_are_nested_parameters_a_search_tunes_on_flipkart(flipkart_dir: Path) -> None:
    """``get_params(deep=True)`` listed the config's top-level fields alone, and ``set_params(config__early__C=2)``
    was refused ('a config has the fields ...'): GridSearchCV could not search early fusion's C, a head's or the
    TF-IDF's settings. They are parameters as a Pipeline's steps' are (a head or an extractor by its name, a vote's
    member by its position), set on a new config validated whole, shared with no other classifier, a misspelt
    name answered with the one it may stand for."""
    frame = load_catalog(flipkart_dir).frame
    frame = frame.groupby(category_at_level(frame["category"], 1)).sample(n=20, random_state=0).reset_index(drop=True)
    top = category_at_level(frame["category"], 1)  # 7 categories of 20 products
    words = HeadConfig(name="words", modality="text", features=[FeatureSpec(name="tfidf_word")], scale=False)
    chars = HeadConfig(name="chars", modality="text", features=[FeatureSpec(name="tfidf_char")], scale=False)
    early = {"classifier": "nbsvm", "C": 5}  # early fusion's, on both heads' features (one head: late fusion)
    config = Config(heads=[words, chars], modalities=["text"], level=1, inner_folds=3, early=early)
    model = ProductClassifier(config)
    params = model.get_params(deep=True)
    assert params["config__early__C"] == 5 and params["config__heads__words__C"] == 10
    assert params["config__heads__words__features__tfidf_word__params"] == {}
    assert ProductClassifier().get_params()["config__early__members__1__members__1__C"] == 20  # the vote's logreg

    min_df = "config__heads__words__features__tfidf_word__params__min_df"
    search = GridSearchCV(model, {"config__early__C": [0.5, 5.0], min_df: [1, 2]}, cv=2).fit(frame, top)
    assert [(p["config__early__C"], p[min_df]) for p in search.cv_results_["params"]] == [
        (0.5, 1),
        (0.5, 2),
        (5.0, 1),
        (5.0, 2),
    ]
    assert search.best_score_ > 0.8
    best, chosen = search.best_estimator_, search.best_params_
    assert (best.config.early.C, best.config.heads[1]) == (chosen["config__early__C"], chars)
    assert best.config.heads[0].features[0].params == {"min_df": chosen[min_df]}
    # what was fitted reads them: the early model's C, the vectoriser's min_df
    fitted_c = {value for name, value in best.early_heads_["text"].classifier_.get_params().items() if name[-1] == "C"}
    assert fitted_c == {chosen["config__early__C"]}
    assert best.heads_["words"].extractors_[0].get_params()["min_df"] == chosen[min_df]
    assert config.early.C == 5.0 and config.heads[0].features[0].params == {}  # the config given is left as it was

    tuned = clone(model).set_params(config__heads__0__C=3, config__early__class_weight=None)
    twin = clone(tuned)
    assert (tuned.config.heads[0].C, tuned.config.early.class_weight, model.config.heads[0].C) == (3, None, 10)
    assert tuned.config.heads[1] == chars
    assert twin.config == tuned.config and twin.config is not tuned.config  # clone's copy: no part shared
    assert twin.config.heads[0] is not tuned.config.heads[0] and twin.config.early is not tuned.config.early
    twin.set_params(config__heads__words__C=4)
    assert (twin.config.heads[0].C, tuned.config.heads[0].C) == (4, 3)
    assert ProductClassifier().set_params(**tuned.get_params()).config == tuned.config
    check_set_params("ProductClassifier", tuned)  # scikit-learn's conventions: set_params(config=inf) among others

    for name, said in [
        ("config__early__c", "config__early__c: unknown field; did you mean config__early__C?"),
        ("config__heads__wrods__C", "unknown item; did you mean config__heads__words?"),
        ("config__heads__words__featurse", "unknown field; did you mean config__heads__words__features?"),
        ("config__seed__x", "config__seed has no fields"),
    ]:
        with pytest.raises(
            ValueError, match=rf"^invalid parameter\(s\) {name} for ProductClassifier: .*{re.escape(said)}"
        ):
            model.set_params(**{name: 1})
    with pytest.raises(ConfigError, match=r"tfidf_word takes no 'min_dff'; it takes .*; did you mean min_df\?$"):
        model.set_params(config__heads__words__features__tfidf_word__params__min_dff=2)
    with pytest.raises(ValidationError, match=r"early\.C\n.*C must be greater than 0"):
        model.set_params(config__early__C=-1)
    assert model.config is config


def test_a_config_of_another_type_is_refused_saying_how_to_make_one() -> None:
    """A mapping of a config's fields given as the classifier's config failed its fit and ``set_params`` with
    ``'dict' object has no attribute 'model_dump'``, from deep in the checks."""
    model = ProductClassifier(config={"fusion": "late"})
    frame = pd.DataFrame({"title": ["red watch", "blue mug"], "category": ["Watches", "Mugs"]})
    said = r"^config: a prodcat\.config\.Config is expected, got dict: make one with .*Config\.model_validate\(mapping"
    with pytest.raises(TypeError, match=said):
        model.fit(frame)
    with pytest.raises(TypeError, match=said):
        model.set_params(config__seed=1)
    assert model.config == {"fusion": "late"}
