"""A scan of every table for a string: where tokens must never be stored."""

from django.db import connection


def tables_holding(text: str) -> list[str]:
    """The tables with a row whose text (every column, PostgreSQL's row-to-text) contains `text`."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT count(*) FROM {quoted} AS row WHERE strpos(row::text, %s) > 0", [text])
            if cursor.fetchone()[0]:
                found.append(table)
    return found
