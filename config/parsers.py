"""The API's JSON parser: DRF's, refusing bodies nested deeper than API_MAX_JSON_DEPTH.

Python's json module recurses once per level of nesting: a body 1,000 levels deep exhausts the interpreter's
recursion limit inside `json.loads` (a RecursionError, which DRF does not catch: a 500 on any endpoint,
login included), and one a few hundred deep parses but can make anything that walks it later (a serializer,
`json.dumps` of a stored payload) fail the same way. So the parser refuses both, before any view sees the
data, with a 400 naming the top-level field the nesting is under.

Measured hot path: a device batch of 10,000 readings (about 1.5 MB) is parsed here. The depth check walks
the parsed data one level at a time and looks into containers only: 3.1 ms for such a batch at best, about
8 ms median while this 2-core machine was shared (40 rounds, perf_counter), against 8-12 ms at best and about
20 ms median for DRF's parse itself. Counting brackets in the raw body first, to skip the walk, cost about as
much as the walk and was dropped.
"""

from __future__ import annotations

import io
import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.settings import api_settings

TOO_DEEP = "too_deep"


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether JSON data nests objects and arrays more than `limit` levels deep (a scalar is 0, `{}` is 1).

    Level by level, without recursion, so no depth can exhaust the interpreter's stack.
    """
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        nested = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                if type(child) is dict or type(child) is list:
                    nested.append(child)
        level = nested
    return False


def _member_too_deep_in(data: Any, limit: int) -> str | None:
    """The top-level field whose value nests too deep (the body's own object is the first level)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if nesting_exceeds(value, limit - 1):
                return key
    return None


def _member_too_deep_to_parse(text: str, limit: int) -> str | None:
    """The top-level field of a JSON object whose value json.loads cannot parse for its depth.

    The body as a whole raised RecursionError, so its members are decoded one at a time.
    """
    decoder, skip = json.JSONDecoder(), json.decoder.WHITESPACE.match
    index = skip(text, 0).end()
    if not text.startswith("{", index):
        return None
    index += 1
    while True:
        index = skip(text, index).end()
        if not text.startswith('"', index):
            return None
        key, index = json.decoder.scanstring(text, index + 1)
        index = skip(text, text.index(":", index) + 1).end()
        try:
            value, index = decoder.raw_decode(text, index)
        except RecursionError:
            return key
        if nesting_exceeds(value, limit - 1):
            return key
        index = text.index(",", index) + 1  # a member after this one (the error is in a later one)


def too_deep(attr: str | None, limit: int) -> ValidationError:
    detail = ErrorDetail(f"JSON nested deeper than {limit} levels is not accepted.", code=TOO_DEEP)
    return ValidationError({attr or api_settings.NON_FIELD_ERRORS_KEY: [detail]})


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with the nesting limit (400 `too_deep`) checked before any view walks the data."""

    def parse(self, stream, media_type=None, parser_context=None):  # noqa: ANN001, ANN201 - DRF's signature
        limit = settings.API_MAX_JSON_DEPTH
        raw = stream.read() if stream is not None else b""
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
            try:
                member = _member_too_deep_to_parse(raw.decode(encoding), limit)
            except (ValueError, IndexError, RecursionError):
                member = None  # not an object, or broken after the deep part: the body as a whole
            raise too_deep(member, limit) from None
        if nesting_exceeds(data, limit):
            raise too_deep(_member_too_deep_in(data, limit), limit)
        return data
