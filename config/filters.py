"""List filters: a filter by id matches rows by that id and never looks the id up.

django-filter's default for a relation is a ModelChoiceFilter, which checks the id against the whole
related table: another person's device id was then a valid choice (200, empty list) while a made-up one
was not (400), which told anyone which ids exist. Here a relation filters by the related object's id as a
plain value, so another person's id and an id that does not exist answer alike: `200` with an empty list,
the rows being scoped already (a malformed id is `400`). A refused choice names the valid ones. Every
FilterSet of the API is built on `FilterSet` below, including those DRF makes from a view's
`filterset_fields` (`FilterBackend`).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django_filters import rest_framework as filters


class FilterSet(filters.FilterSet):
    @property
    def form(self) -> forms.Form:
        """The filter form, whose choice fields name the valid choices when refusing one (API.md)."""
        form = super().form
        if not getattr(form, "names_choices", False):
            for field in form.fields.values():
                if isinstance(field, forms.ChoiceField):
                    valid = ", ".join(str(value) for value, _ in field.choices if value != "").replace("%", "%%")
                    message = f'"%(value)s" is not a valid choice. Valid choices: {valid}.'
                    field.error_messages["invalid_choice"] = message
            form.names_choices = True
        return form

    @classmethod
    def filter_for_field(cls, field: models.Field, field_name: str, lookup_expr: str | None = None) -> Any:
        if field.is_relation and field.concrete:
            # The related object's own id field (a UUIDFilter for a UUID key): matched, never looked up.
            field = field.target_field
        return super().filter_for_field(field, field_name, lookup_expr)


class FilterBackend(filters.DjangoFilterBackend):
    filterset_base = FilterSet
