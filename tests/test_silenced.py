"""Warnings prodcat silences around its own calls (:mod:`prodcat.silenced`), with fits running in several threads."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest
from joblib import parallel_config
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.svm import SVC

from prodcat.config import Config, FeatureSpec, HeadConfig
from prodcat.models.classifier import ProductClassifier
from prodcat.silenced import Silenced

#: the starts of the messages of scikit-learn's warnings a fit silences (prodcat.models.heads)
SILENCED = (
    "The least populated class in y has only",
    "The number of unique classes is greater than 50%",
    "The `probability` parameter was deprecated",
)


def _catalogue() -> pd.DataFrame:
    """24 categories of 2 products and one of 1: the products hold more categories than half their number, and the
    rare categories (fewer products than the 2 inner folds) fewer products than folds."""
    labels = [f"c{i}" for i in range(24) for _ in range(2)] + ["rare"]
    rng = np.random.default_rng(0)
    titles = [f"{label} {label}{'x' * len(label)} {rng.choice(['new', 'sale', 'pack'])}" for label in labels]
    return pd.DataFrame({"title": titles, "description": "", "category": labels})


def _config(seed: int = 0) -> Config:
    # early fusion's RBF SVC is fitted with probability=True, which scikit-learn 1.9 deprecates
    heads = [
        HeadConfig(name="words", modality="text", features=[FeatureSpec(name="tfidf_word")], classifier="linearsvc"),
        HeadConfig(name="chars", modality="text", features=[FeatureSpec(name="tfidf_char")], classifier="linearsvc"),
    ]
    early = {"classifier": "svc", "C": 1.0}
    return Config(heads=heads, modalities=["text"], level=None, inner_folds=2, early=early, seed=seed)


def _as_made(filters: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``filters`` as ``warnings.filterwarnings`` makes them: a message or a module given as text compiled."""
    return [
        (
            action,
            re.compile(message, re.IGNORECASE) if isinstance(message, str) else message,
            category,
            re.compile(module) if isinstance(module, str) else module,
            line,
        )
        for action, message, category, module, line in filters
    ]


def _prodcats(filters: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The filters of prodcat's silenced warnings (:class:`~prodcat.silenced.Silenced` kinds) among ``filters``."""
    return [f for f in filters if isinstance(f[2], type(Silenced)) and f[2] is not Silenced]


def _shown(recorded: pytest.WarningsRecorder) -> list[str]:
    return [str(each.message) for each in recorded if str(each.message).startswith(SILENCED)]


def test_fits_in_threads_leave_the_warning_filters_as_they_were_and_silence_their_warnings_alone(
    recwarn: pytest.WarningsRecorder,
) -> None:
    """Fits in threads each added scikit-learn's warnings they silence to the filters and put the filters back as
    they found them on leaving (``warnings.catch_warnings``), so that two fits overlapping put back each other's: one
    thread's filter stayed behind, silencing those warnings in the whole process, and the other thread's warnings
    were shown. The filters are now what they were, and the fits silence their warnings, in the fits alone."""
    frame = _catalogue()
    ProductClassifier(_config()).fit(frame)  # alone, once: the filters of prodcat's silenced warnings take their place
    before = list(warnings.filters)
    recwarn.clear()
    with ThreadPoolExecutor(3) as pool:
        fitted = list(pool.map(lambda seed: ProductClassifier(_config(seed)).fit(frame), range(24)))
    # prodcat's filters are each there once, as before; what other libraries' own catch_warnings blocks do in the fits'
    # threads is theirs, and not thread-safe either: a clean-clone CI run once ended with numpy's ('error',
    # VisibleDeprecationWarning) and a second ('ignore', ResourceWarning) left behind, prodcat's filters reordered
    assert Counter(_prodcats(warnings.filters)) == Counter(_prodcats(before))
    # and no filter silencing a message is left behind (the defect: a fit's catch_warnings block left one)
    assert [f for f in warnings.filters if f not in before and f[0] == "ignore" and f[1] is not None] == []
    assert _shown(recwarn) == []
    assert all(model.score(frame) > 0.9 for model in fitted)

    with parallel_config(backend="threading"):  # scikit-learn's search, two fits at a time in threads
        search = GridSearchCV(ProductClassifier(_config()), {"config__seed": [0, 1, 2, 3]}, cv=2, n_jobs=2)
        search.fit(frame)
    # scikit-learn's workers make their own copy of the filters, in a catch_warnings block of their own
    # (sklearn.utils.parallel), which in threads may leave one worker's copy behind: the same filters, a plain-text
    # module of Python's defaults made a regular expression. Those workers also empty the process's one filter list
    # for a moment (warnings.resetwarnings, before putting their copy back), so a warning another thread's fit
    # silences may meet no filter then and be shown: not asserted (seen once in a clean-clone CI run)
    assert _as_made(warnings.filters) == _as_made(before)

    # the same warnings, outside a fit, are shown as they were
    with pytest.warns(UserWarning, match="The least populated class in y has only 1 members"):
        list(StratifiedKFold(3).split(np.zeros(7), list("aaabbbc")))
    with pytest.warns(FutureWarning, match="The `probability` parameter was deprecated"):
        SVC(probability=True).fit(np.arange(8.0)[:, None], [0, 1] * 4)


def test_a_silenced_warning_is_silenced_in_the_context_silencing_it_alone_whatever_was_filtered_since() -> None:
    """A filter put before prodcat's (``warnings.simplefilter("error")``, as pytest's ``-W error``) or the filters
    replaced since its module was imported (a ``catch_warnings`` block around the import) do not make it shown."""
    from prodcat.silenced import Silenced, silenced

    class _Tested(Silenced):
        category = UserWarning
        message = "tested: "

    with warnings.catch_warnings():
        warnings.resetwarnings()
        warnings.simplefilter("error")
        with silenced(_Tested):
            warnings.warn("tested: silenced", UserWarning, stacklevel=1)
            with pytest.raises(FutureWarning):  # another category
                warnings.warn("tested: of another category", FutureWarning, stacklevel=1)
            with pytest.raises(UserWarning):  # another message
                warnings.warn("another", UserWarning, stacklevel=1)
        with pytest.raises(UserWarning, match="tested: outside"):
            warnings.warn("tested: outside", UserWarning, stacklevel=1)
        # silenced in this thread, not in the other
        with ThreadPoolExecutor(1) as pool, silenced(_Tested), pytest.raises(UserWarning, match="in another thread"):
            pool.submit(warnings.warn, "tested: in another thread", UserWarning).result()
