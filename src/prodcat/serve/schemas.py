"""The API's contract: typed request and response bodies (they generate ``/openapi.json``)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError

from prodcat.evaluate.explain_settings import NEGLIGIBLE_DROP

#: longest product_id, in the JSON schema and in the review store's column
MAX_PRODUCT_ID_CHARS = 256
#: longest category and reviewer name of a review submission
MAX_CATEGORY_CHARS = 1000
MAX_REVIEWER_CHARS = 128


def _refuse_blank(value: Any) -> Any:
    """Refuse text of spaces alone in a client's words: the ``\\S`` pattern documenting it in the schema, checked
    after this, says "String should match pattern '\\S'"."""
    if isinstance(value, str) and value.isspace():
        raise PydanticCustomError("blank", "Input should not be blank (spaces alone)")
    return value


#: text that must hold something other than spaces
NotBlank = Annotated[str, BeforeValidator(_refuse_blank)]


class JsonFloat(float):
    """A JSON number with a fraction or an exponent, remembering how it was written (``literal``): ``7.0`` and
    ``1e3`` are the floats 7.0 and 1000.0, and the ids "7.0" and "1e3", as a catalogue's CSV id column keeps them."""

    literal: str

    @classmethod
    def parsed(cls, literal: str) -> JsonFloat:
        number = cls(literal)
        number.literal = literal
        return number


def id_as_text(value: Any) -> Any:
    """A ``product_id`` given as a JSON number read as the text it is written as (``7`` is "7", ``7.0`` "7.0",
    ``1e3`` "1e3"), as the catalogue loaders and ``prodcat predict`` read a numeric id column; anything else
    (true/false, NaN, Infinity, an object, a list) as it is, for the validation to refuse: a boolean is no id."""
    if isinstance(value, JsonFloat):
        return value.literal
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _id_text(value: Any) -> str | None:
    """A ``product_id`` given in JSON as text (see :func:`id_as_text`), or refused saying what an id is: pydantic's
    'Input should be a valid string' no longer said so, a number being taken."""
    value = id_as_text(value)
    if value is not None and not isinstance(value, str):
        number = "a finite number" if isinstance(value, float) else "a number"  # NaN, Infinity
        raise PydanticCustomError("product_id_type", f"Input should be text or {number}")
    return value


def _without_spaces_around(value: Any) -> Any:
    """A ``product_id`` as the API reads one, without the spaces around it (``str.strip``, the rule of
    :func:`prodcat.catalog.schema.given_product_id`), before its length is checked: the id stored is what counts."""
    return value.strip() if isinstance(value, str) else value


#: a ``product_id`` given to the API, read without the spaces around it (give its longest with ``max_length``)
GivenProductId = Annotated[str | None, BeforeValidator(_without_spaces_around)]

#: a product's ``product_id`` in a JSON body: text or a number (read as written: :func:`id_as_text`), then as
#: :data:`GivenProductId`; /openapi.json says it takes a number
ProductIdIn = Annotated[
    GivenProductId,
    BeforeValidator(_id_text),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]}),
]


def _null_as_empty(value: Any) -> Any:
    """A text sent as JSON ``null`` is none, as if left out: a table's missing cell (pandas' ``to_json`` writes
    one so, as for a third of Rakuten's descriptions) was refused, 'Input should be a valid string'."""
    return "" if value is None else value


#: an optional text, empty when left out or null; /openapi.json says it takes null (a client checking its requests
#: against the document refused what the API takes)
OptionalText = Annotated[
    str, BeforeValidator(_null_as_empty), WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}]})
]

#: Unicode general categories of what breaks or controls a line: controls (line break, tab, escape, DEL...) and the
#: line and paragraph separators (U+2028, U+2029)
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})


def listed_characters(text: str, kinds: frozenset[str]) -> str:
    """The characters of ``text`` whose Unicode general category is one of ``kinds``, each once, as a refusal lists
    them (``'\\n' (U+000A), '\\t' (U+0009)``); "" when it holds none."""
    return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in sorted({c for c in text if unicodedata.category(c) in kinds}))


def unstorable_reason(value: str) -> tuple[str, str] | None:
    """``(error code, reason)`` when a PostgreSQL review store cannot hold ``value``, else ``None``.

    PostgreSQL text refuses a NUL character and a lone surrogate (which has no UTF-8 form).
    """
    if "\x00" in value:
        return "text_nul", "contains a NUL character (\\u0000); remove it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "text_encoding", "is not valid Unicode (lone surrogate); send UTF-8 text"
    return None


def _one_value_error(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """One error for a value no member of the union takes (pydantic gives one per member tried)."""
    try:
        return handler(value)
    except ValidationError:
        message = "a value is text, a finite number or null (not true/false, an object or a list)"
        raise PydanticCustomError("specification_value", message) from None


#: one attribute's value: text or a finite number (written as Python writes it: 1.50 gives 1.5), or null
#: for none (left out, as the loader leaves out a missing value); true/false are refused, not turned into 1/0
SpecificationValue = Annotated[
    StrictStr | StrictInt | Annotated[float, Field(strict=True, allow_inf_nan=False)] | None,
    WrapValidator(_one_value_error),
]


class SpecificationPair(BaseModel):
    """One attribute as Flipkart's specification table writes it: a key (optional) and its value."""

    model_config = ConfigDict(extra="forbid")
    key: StrictStr | None = None
    value: SpecificationValue


#: most attributes of one product (the largest specification table of the Flipkart sample has 46)
MAX_SPECIFICATIONS = 1000


def _specifications_form(value: Any) -> str | None:
    return "pairs" if isinstance(value, list) else "object" if isinstance(value, dict) else None


def _at_most_max_specifications(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Refuse more than :data:`MAX_SPECIFICATIONS` attributes, saying how many were given (pydantic's own check of
    a dict stops counting at the limit: 'should have at most 1000 items after validation, not more')."""
    if isinstance(value, dict | list) and len(value) > MAX_SPECIFICATIONS:
        message = "{given} attributes exceed the limit of {limit}"
        raise PydanticCustomError("too_long", message, {"limit": MAX_SPECIFICATIONS, "given": len(value)})
    return handler(value)


#: a product's attributes: an object, or a list of key/value pairs where keys repeat or are missing (told
#: apart by the JSON type, so that an error names the form given, not both); the JSON schema states the limit on
#: each form, as maxProperties / maxItems (on the union it was maxLength, which binds strings only)
Specifications = Annotated[
    Annotated[
        dict[str, SpecificationValue], Field(json_schema_extra={"maxProperties": MAX_SPECIFICATIONS}), Tag("object")
    ]
    | Annotated[list[SpecificationPair], Field(json_schema_extra={"maxItems": MAX_SPECIFICATIONS}), Tag("pairs")],
    Discriminator(
        _specifications_form,
        custom_error_type="specifications",
        custom_error_message="an object of attributes or a list of key/value pairs",
    ),
    WrapValidator(_at_most_max_specifications),
]


#: a product's attributes, or null for none, as if left out (as a null title or description is none)
OptionalSpecifications = Specifications | None


def specification_pairs(specifications: OptionalSpecifications) -> list[tuple[str | None, object]]:
    """``(key, value)`` in the order given, from either form of :data:`Specifications`; none for null."""
    if specifications is None:
        return []
    if isinstance(specifications, dict):
        return list(specifications.items())
    return [(pair.key, pair.value) for pair in specifications]


class ProductIn(BaseModel):
    """A product sent as JSON (text only; send a photo as multipart). Each field is optional, as a catalogue's
    column is: a product is classified from what it has, and one with nothing to classify it from is refused
    422 ``empty_product`` (:func:`prodcat.serve.inputs.check_text`), as JSON as a form."""

    model_config = ConfigDict(extra="forbid")
    title: OptionalText = Field("", description="product name as the seller typed it (null or left out: none)")
    description: OptionalText = Field("", description="free-text description (null or left out: none)")
    specifications: OptionalSpecifications = Field(
        default_factory=dict,
        description='the seller\'s attributes (null or left out: none), e.g. `{"Type": "Bath Towel", "Material": '
        '"Cotton"}`, or as a list of pairs where keys repeat or are missing (`[{"key": "Pack of", "value": "3"}, '
        '{"value": "Machine washable"}]`): read after the description as `Type: Bath Towel; Material: Cotton`, '
        "exactly as the Flipkart loader reads its specification table (an empty key gives the value alone, a null "
        "value is left out); counted in the description's length limit",
    )
    product_id: ProductIdIn = Field(
        None,
        # checked with the text (inputs.check_text), for a JSON product as for a multipart one: one error code
        json_schema_extra={"maxLength": MAX_PRODUCT_ID_CHARS},
        description="the caller's id, echoed back and stored without the spaces around it, as `prodcat predict` "
        'reads a catalogue\'s ids; a number is read as the text it is written as (`7` is `"7"`, `7.0` '
        '`"7.0"`), true/false are refused (its length is the stripped id\'s, at most 256 characters: a longer '
        "one gets 422 "
        "`product_id_length`); an empty or blank one is no id (answered and stored as null)",
    )


class BatchProductIn(ProductIn):
    """One product of a multipart batch: ``image`` names the file part holding its photo."""

    image: str | None = Field(None, max_length=256, description="name of the multipart file part with the photo")


class Answer(BaseModel):
    """A body the API answers with: every field is always in it (a field left empty is ``null``, not missing), so the
    OpenAPI document lists each one as required, a field with a default included. pydantic lists a field with a
    default as optional, in the serialization schema that FastAPI publishes for responses too, and generated clients
    typed ``product_id``, ``review_id``, ``trains_as``, an error's ``limit``... as possibly unset."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class CategoryProbability(Answer):
    """One of the most probable categories of a product, and its calibrated probability (0 to 1)."""

    category: str
    probability: float


class PredictionOut(Answer):
    """The category of one product and whether a person should check it."""

    category: str
    confidence: float = Field(description="calibrated probability of `category`")
    decision: Literal["auto", "review"] = Field(description="`auto`: accept; `review`: queued for a person")
    top_k: list[CategoryProbability]
    modalities_used: list[str] = Field(description="`text`, `image`: what the prediction was made from")
    model_version: str
    request_id: str
    product_id: str | None = None
    review_id: int | None = Field(None, description="id in the review queue when the prediction was recorded")


class WordWeightOut(Answer):
    """One distinct word (all its occurrences) of the title and description, and what removing it does."""

    word: str = Field(description="the word as first written")
    weight: float = Field(
        description="drop of the predicted category's probability when the word is removed (positive = supports it)"
    )
    runner_up_weight: float | None = Field(None, description="the same drop for the runner-up category")
    occurrences: int


class WordsOut(Answer):
    """The words' part of an explanation: what removing each distinct word does to the predicted category."""

    weights: list[WordWeightOut] = Field(description="in reading order, title first")
    distinct_words: int = Field(description="distinct words in the text; those beyond `max_words` have no weight")
    negligible: bool = Field(
        description=f"no word moves the probability by {NEGLIGIBLE_DROP:g}: the weights then rank noise, not what "
        "made the model choose"
    )


class PixelsOut(Answer):
    """The photo's part of an explanation: what hiding each region of it does to the predicted category."""

    heatmap: list[list[float]] = Field(
        description="grid x grid cells, rows from the top: mean drop of the predicted category's probability when "
        "a grey square covers the cell (positive = the cell supports it)"
    )
    reference_probability: float = Field(description="the category's probability on the photo as decoded to occlude")
    largest_drop: float = Field(
        description="the largest drop of that probability when one square is hidden (negative: every square raises it)"
    )
    largest_change: float = Field(description="the largest change of it, up or down, when one square is hidden")
    negligible: bool = Field(
        description=f"no square moves the probability by {NEGLIGIBLE_DROP:g}: the photo's regions hardly matter here"
    )
    photo_size: list[int] = Field(description="width and height (pixels) of the photo the grid lies over")
    overlay_png: str | None = Field(None, description="base64 PNG of the heatmap over the photo (`overlay=true`)")


class ExplanationOut(Answer):
    """A prediction with the weight of each word and of each region of the photo (occlusion)."""

    prediction: PredictionOut
    runner_up: str | None = Field(description="the second most probable category")
    words: WordsOut | None
    words_skipped: str | None = Field(description="why there are no word weights, if there are none")
    pixels: PixelsOut | None
    pixels_skipped: str | None = Field(description="why there is no heatmap, if there is none")


class ErrorOut(Answer):
    """Why a request (or one item of a batch) was refused."""

    error: str = Field(description="machine-readable code, e.g. `max_text_chars`, `image_type`, `timeout`")
    detail: str = Field(description="what was wrong and what to do")
    limit: str | None = Field(None, description="the setting that refused it, when a limit did")
    limit_value: Any = Field(None, description="that setting's value")
    status: int = Field(description="HTTP status this error maps to")
    request_id: str | None = None
    product_id: str | None = Field(None, description="the product's `product_id`, when the request gave one")


class BatchItemOut(Answer):
    """One product of a batch: a prediction or an error, never both."""

    index: int = Field(description="position in the request")
    prediction: PredictionOut | None = None
    error: ErrorOut | None = None


class BatchOut(Answer):
    """The answer to a batch: one result per product, in the request's order."""

    request_id: str
    model_version: str
    results: list[BatchItemOut]


class HealthOut(Answer):
    """The process answers (it says nothing of the model or the review store)."""

    status: Literal["ok"] = "ok"


class ReadyOut(Answer):
    """The model is loaded and the review store answers (otherwise the answer is a 503 error)."""

    ready: bool
    model_version: str
    labels: int = Field(description="how many categories the model predicts")


class ModelOut(Answer):
    """What the loaded bundle is: its version, labels, metrics, config and library versions."""

    version: str
    labels: list[str]
    manifest: dict[str, Any]


#: what each status of a review record means, as the OpenAPI document says it (the record and ``GET /reviews?status=``)
REVIEW_STATUSES_TEXT = (
    "`pending`: awaiting a person; `reviewed`: corrected by a person (`corrected_category`); `recorded`: an `auto` "
    "prediction, kept because the server records every prediction (`--record-all`); `superseded`: left pending, or "
    "corrected, when another record of its product (`source_product_id`) was corrected later, it trains as nothing"
)


class ReviewOut(Answer):
    """A record of the review queue (its photo, if any, is at ``/reviews/{id}/image``)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    created_at: datetime
    request_id: str
    model_version: str
    source_product_id: str | None
    title: str
    description: str
    has_image: bool
    predicted_category: str
    confidence: float
    decision: str
    top_k: list[CategoryProbability]
    status: Literal["pending", "reviewed", "recorded", "superseded"] = Field(description=REVIEW_STATUSES_TEXT)
    corrected_category: str | None
    trains_as: str | None = Field(
        None,
        description="the label the correction trains as: `corrected_category` cut at the model's level, as "
        "`prodcat train --feedback` cuts it (a deeper path trains as the model's category above it); null for a "
        "superseded correction, which a later correction of its product overrides",
    )
    reviewer: str | None
    reviewed_at: datetime | None


class UnreadableRecordOut(Answer):
    """A record of the page with a cell that cannot be read (the database edited by hand): kept in the store as it
    is, listed here instead of failing the page."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    column: str = Field(description="the first column whose cell cannot be read")
    reason: str = Field(description="why, e.g. the JSON parser's error")


class ReviewListOut(Answer):
    """A page of the review queue's records of one status."""

    total: int = Field(description="records with this status, the unreadable ones included")
    items: list[ReviewOut]
    unreadable: list[UnreadableRecordOut] = Field(
        default_factory=list, description="the page's records that cannot be read, in `items`' stead"
    )
    next_after_id: int | None = Field(
        None,
        description="the `after_id` that asks for the next page (the id of this page's last record, readable or "
        "not); null when no record of this status follows the page",
    )


class ReviewSubmission(BaseModel):
    """The category a person chose for a record (a full path such as ``Home > Curtains``)."""

    model_config = ConfigDict(extra="forbid")
    category: NotBlank = Field(
        min_length=1,
        max_length=MAX_CATEGORY_CHARS,
        pattern=r"\S",
        description="not blank: it becomes a label, stored in one spelling (each level stripped, its spacing "
        "collapsed, levels separated by ' > ', composed: NFC)",
    )
    reviewer: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=MAX_REVIEWER_CHARS, pattern=r"\S"),
            BeforeValidator(_refuse_blank),
        ]
        | None
    ) = Field(
        None,
        description="who chose the category; left out or null for no one. Not blank, as the category: an empty name "
        "(an unset variable of the client) would be stored as a reviewer that names no one; one line, without a line "
        "break, tab or other control character (it would cut or forge the lines of whatever lists the queue line by "
        "line: a terminal, a log, a CSV made from GET /reviews)",
    )

    @field_validator("category", "reviewer")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        problem = None if value is None else unstorable_reason(value)
        if problem is not None:
            raise ValueError(problem[1])
        return value

    # after _storable, so that a NUL is refused in the words it was before
    @field_validator("reviewer")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        """Refuse a name holding a line break or another control character: stored as given, it would cut or
        forge the lines of whatever lists the queue line by line (a terminal, a log, a CSV a client makes of it).
        Refused rather than replaced by a space, as a blank name is: names attribute the corrections, and a client
        sending one has a bug to see (a name read with its line end)."""
        if value is not None and (listed := listed_characters(value, _LINE_BREAKING)):
            raise PydanticCustomError(
                "control_character",
                "Input should be one line, without a line break, tab or other control character: {listed}",
                {"listed": listed},
            )
        return value
