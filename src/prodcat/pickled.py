"""scikit-learn's warning that another version of it pickled an estimator, silenced while a bundle's model loads
(:func:`prodcat.bundle.load_bundle`, which says it once instead). A module of its own, imported as a model loads:
scikit-learn, which its class needs, takes seconds to import, and a :class:`~prodcat.silenced.Silenced` class is made
at a module's top level (scikit-learn's process workers are handed the filters it makes, by reference)."""

from __future__ import annotations

from sklearn.exceptions import InconsistentVersionWarning

from prodcat.silenced import Silenced


class OtherScikitLearnPickled(Silenced):
    """scikit-learn's InconsistentVersionWarning, one paragraph for each estimator of a pickle another version of it
    wrote: dozens in a model (every head's scaler, classifier, vectoriser)."""

    category = InconsistentVersionWarning
