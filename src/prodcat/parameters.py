"""Objects pickled in models that still load once their class takes a new constructor parameter (or field).

A trained model is a pickle (:mod:`prodcat.bundle`): each estimator's ``__dict__``, its constructor parameters among
it. An estimator pickled before its class took one more has no attribute of that name: scikit-learn's
``get_params`` (which reads one attribute per ``__init__`` parameter, for ``clone`` and ``repr`` too) and the code
reading the setting would raise ``AttributeError``, and the model no longer load. :class:`AddedParametersDefaulted`
gives such a parameter its default on unpickling. Every prodcat class whose instances a trained model holds takes it:
the extractors and their text normalizer, the classifier, its heads, fusions, calibrators and decision policy, the
heads' own classifiers and cross-validation splitter. The configuration a model keeps (pydantic models, whose
fields are their parameters) takes :class:`AddedFieldsDefaulted`, the same rule.
"""

from __future__ import annotations

import inspect
import pickle
from typing import Any

#: the default of a parameter that has none
NO_DEFAULT = inspect.Parameter.empty


class AddedParametersDefaulted:
    """Mixin: unpickled, an instance pickled before a parameter was added to its class's ``__init__`` takes that
    parameter's default (placed before ``BaseEstimator`` in the bases, whose ``__setstate__`` then runs; a class with
    no ``__setstate__`` further along, such as a scikit-learn splitter, has its state set as pickle does by default).

    A parameter added later must therefore default to what the class did before it existed; one whose old behaviour
    is another value is set by the class's own ``__setstate__`` before it calls this one. A missing parameter without
    a default has no value to take: :class:`pickle.UnpicklingError` naming the class and the parameter, rather than
    an ``AttributeError`` wherever it is first read.
    """

    def __setstate__(self, state: dict[str, Any]) -> None:
        missing = {
            parameter.name: parameter.default
            for parameter in _init_parameters(type(self))
            if parameter.name not in state
        }
        state = {**defaults_of_missing(type(self), "parameter", missing), **state}
        further_along = getattr(super(), "__setstate__", None)
        if further_along is None:
            self.__dict__.update(state)
        else:
            further_along(state)


class AddedFieldsDefaulted:
    """Mixin of a pydantic model that trained models keep (their configuration): unpickled, an instance pickled before
    a field was added to its class takes that field's default (of its default factory), as
    :class:`AddedParametersDefaulted` does for an estimator's parameters, on the same terms (placed before
    ``BaseModel`` in the bases, whose ``__setstate__`` then runs). Without it the field is missing from the instance:
    reading it raises ``AttributeError``, and ``model_dump`` leaves it out."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        fields = state.get("__dict__", {})
        missing = {
            name: NO_DEFAULT if field.is_required() else field.get_default(call_default_factory=True)
            for name, field in type(self).model_fields.items()  # type: ignore[attr-defined]  # BaseModel's
            if name not in fields
        }
        defaults = defaults_of_missing(type(self), "field", missing)
        # in the order the class declares them, as an instance made now holds them: model_dump and JSON follow it
        fields = {**dict.fromkeys(type(self).model_fields), **defaults, **fields}  # type: ignore[attr-defined]
        super().__setstate__({**state, "__dict__": fields})  # type: ignore[misc]  # BaseModel's, further along


def defaults_of_missing(owner: type, kind: str, missing: dict[str, Any]) -> dict[str, Any]:
    """``missing``: the parameters (or fields, the ``kind``) of ``owner`` that its pickled state lacks, each with its
    default; :class:`pickle.UnpicklingError` naming the first without one (:data:`NO_DEFAULT`)."""
    if without := [name for name, default in missing.items() if default is NO_DEFAULT]:
        raise pickle.UnpicklingError(
            f"{owner.__qualname__} was pickled without its {kind} {without[0]!r}, which has no default"
        )
    return missing


def _init_parameters(cls: type[Any]) -> list[inspect.Parameter]:
    """The parameters of ``cls.__init__`` that ``get_params`` reads: those named, not ``self``, ``*args``,
    ``**kwargs``."""
    if cls.__init__ is object.__init__:
        return []
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]  # self
    return [parameter for parameter in parameters if parameter.kind not in variadic]
