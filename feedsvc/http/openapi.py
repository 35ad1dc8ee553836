"""What the OpenAPI document says beyond what Litestar infers, so that partners can generate
clients from it (openapi-python-client, openapi-typescript) without warnings.

Litestar writes an optional ``Literal`` inline as ``{"type": ["null", "string"], "enum":
[..., null]}``, which generators turn into one enumeration per value, at every place it
occurs. ``NamedEnums`` writes each enumeration (the model's ``Trend``, ``Status``, ``ChangeOp``,
``WebhookState``, and the embed's ``Theme``) once, as a component, and refers to it everywhere,
``null`` beside it where the value is optional.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import UnionType
from typing import TYPE_CHECKING, Any, Union, cast, get_args, get_origin

from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import OpenAPIType, Reference, Schema
from litestar.params import KwargDefinition
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition
from msgspec import UnsetType

from feedsvc.model import Cadence, ChangeOp, MailFormat, NewsletterLang, Status, SubscriberState, Trend, WebhookState
from feedsvc.render.embed import Theme

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.types import Method

ENUMS: dict[Any, tuple[str, str]] = {
    Trend: ("Trend", "Which way the situation moved in the commentary's period."),
    Status: ("Status", "`draft` is visible to editors only; `published` to everyone once published_at is due."),
    ChangeOp: ("ChangeOp", "What a change did to a commentary."),
    WebhookState: ("WebhookState", "`disabled` after deliveries kept failing; a new subscription starts again."),
    Theme: ("Theme", "The embed's colours."),
    NewsletterLang: ("NewsletterLang", "A language the newsletter is written in."),
    Cadence: ("Cadence", "`weekly`: the weekly digest; `each`: a mail for each commentary."),
    SubscriberState: ("SubscriberState", "`pending` until the confirmation link's button is pressed."),
    MailFormat: ("MailFormat", "`html` or `text`: a part of the mail; `eml`: the whole mail, signed."),
}
"""Each named ``Literal`` of the model, with its component name and description."""

# One FieldDefinition per component, so that every reference resolves to the same entry.
_COMPONENTS = {
    literal: FieldDefinition.from_annotation(literal, kwarg_definition=KwargDefinition(schema_component_key=name))
    for literal, (name, _) in ENUMS.items()
}


def _named(annotation: Any) -> tuple[Any, bool] | None:
    """The named Literal ``annotation`` is, and whether ``None`` stands beside it (``UNSET``,
    a patch's "not given", is no value of the document)."""
    if annotation in ENUMS:
        return annotation, False
    if get_origin(annotation) not in (Union, UnionType):
        return None
    args = [a for a in get_args(annotation) if a is not UnsetType]
    nullable = type(None) in args
    rest = [a for a in args if a is not type(None)]
    if len(rest) == 1 and rest[0] in ENUMS:
        return rest[0], nullable
    return None


def enum_reference(literal: Any, schema_creator: SchemaCreator) -> Reference:
    """A reference to the component of ``literal`` (one of ``ENUMS``), made on first use."""
    name, description = ENUMS[literal]
    field = _COMPONENTS[literal]
    schema = schema_creator.schema_registry.get_schema_for_field_definition(field)
    if schema.enum is None:
        schema.type = OpenAPIType.STRING
        schema.enum = list(get_args(literal))
        schema.title = name
        schema.description = description
    reference = schema_creator.schema_registry.get_reference_for_field_definition(field)
    assert reference is not None
    return reference


class NamedEnums(OpenAPISchemaPlugin):
    """Writes the model's enumerations as components (see the module's docstring)."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return _named(field_definition.annotation) is not None

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        named = _named(field_definition.annotation)
        assert named is not None
        reference = enum_reference(named[0], schema_creator)
        if named[1]:
            return Schema(one_of=[reference, Schema(type=OpenAPIType.NULL)])
        # Litestar passes a plugin's Reference through as it does its own components'.
        return cast(Schema, reference)


def operation_id(handler: HTTPRouteHandler, method: Method | str, path: Sequence[Any]) -> str:
    """An operation's id: its handler's route name (``feed-rss``), else its function's name
    (``list_commentaries``), with ``_`` for ``-``."""
    return (handler.name or handler.handler_name).replace("-", "_")
