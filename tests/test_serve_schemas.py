"""The API's request schemas, validated as the routes validate a JSON product."""

from __future__ import annotations

import jsonschema
import pytest
from pydantic import ValidationError

from prodcat.serve.schemas import BatchProductIn, ProductIn


@pytest.mark.parametrize("model", [ProductIn, BatchProductIn])
def test_a_null_description_is_no_description(model: type[ProductIn]) -> None:
    """A product whose description is JSON null (a table's missing cell, as pandas' to_json writes a third of
    Rakuten's) was refused 422 'description: Input should be a valid string'; it is read as no description, as one
    left out is."""
    given = model.model_validate({"title": "Jeu de société Monopoly", "description": None})
    assert given.description == "" == model.model_validate({"title": "Jeu de société Monopoly"}).description
    with pytest.raises(ValidationError, match="description"):
        model.model_validate({"title": "Jeu de société Monopoly", "description": 3})  # still text or nothing


@pytest.mark.parametrize("model", [ProductIn, BatchProductIn])
def test_the_published_schema_takes_a_null_description(model: type[ProductIn]) -> None:
    """The API takes a null description, but the schema /openapi.json publishes for it said a string alone: a client
    or proxy checking its requests against the document refused a product the API answers. It takes null now, and
    still no other non-text."""
    schema = model.model_json_schema()
    jsonschema.validate({"title": "Jeu de société Monopoly", "description": None}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"title": "Jeu de société Monopoly", "description": 3}, schema)
