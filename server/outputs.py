"""The base of the API's response models: what a handler answers, declared with ``openapi.answers`` and
described from them in /api/openapi.json. A field the handler sends but the model does not name is refused
(``additionalProperties: false``), so the API tests, which check each answer against its model, catch a
field added to an answer and not to the document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import pydantic

# A moment an answer names, written as ``datetime.isoformat`` writes it (``+00:00``, not pydantic's ``Z``), as
# the answers built by hand before their models wrote it.
Instant = Annotated[datetime, pydantic.PlainSerializer(lambda moment: moment.isoformat(), return_type=str,
                                                       when_used="json")]


class Out(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True)


class Untyped(pydantic.BaseModel):
    """A JSON object not yet described field by field: tests/server/test_openapi.py lists the operations that
    still answer one, a list that only shrinks."""

    model_config = pydantic.ConfigDict(extra="allow")


class Named(Out):
    id: int
    name: str


class Person(Out):
    id: int
    display_name: str
