"""The config's fields and its parts' as nested parameters (``early__C``): the classifier's ``config__`` parameters,
for scikit-learn's searches."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from prodcat.config import Config, ConfigError, HeadConfig, config_parameters, config_with


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
