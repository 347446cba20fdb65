"""The one pose vocabulary: schemas (parameters, ranges, laws, what drives them), the face roles
they name, pose strings and pose-sequence CSVs. Every package may import it; it imports none of
them (but `media` for safe file reads)."""

from poses.schema import (
    DEFAULT_SCHEMA,
    Parameter,
    Schema,
    SchemaError,
    load_schema,
    parse_schema,
    shipped_schemas,
)

__all__ = [
    "DEFAULT_SCHEMA",
    "Parameter",
    "Schema",
    "SchemaError",
    "load_schema",
    "parse_schema",
    "shipped_schemas",
]
