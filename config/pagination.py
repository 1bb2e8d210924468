from rest_framework import pagination
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

MAX_OFFSET = 2**63 - 1  # a page beyond this is past the end of any list


class PageNumberPagination(pagination.PageNumberPagination):
    """`page` and `page_size` (default 20, capped at 1,000); answers `count`, `next`, `previous`, `results`."""

    page_size_query_param = "page_size"
    max_page_size = 1000


class FastCountPagination(PageNumberPagination):
    """Page-number pagination whose `count` may come from the view's cheaper `fast_count()`.

    Counting a long time series row by row costs more than fetching the page. A view that
    keeps rollups answers the count from them (or None, and the rows are counted). The
    page itself is always read from the rows: one row more than the page tells whether
    there is a next one, so the results never depend on the count, and the count is never
    less than what the pages have shown.
    """

    def paginate_queryset(self, queryset, request, view=None):  # noqa: ANN001, ANN201
        counted = view.fast_count() if hasattr(view, "fast_count") else None
        if counted is None:
            return super().paginate_queryset(queryset, request, view)
        self.request = request
        page_size = self.get_page_size(request)
        try:
            self.number = int(request.query_params.get(self.page_query_param) or 1)
        except ValueError:
            self.number = 0
        offset = (self.number - 1) * page_size
        if self.number < 1 or offset + page_size + 1 > MAX_OFFSET:  # PostgreSQL's OFFSET and LIMIT are bigints
            raise NotFound("Invalid page.")
        rows = list(queryset[offset : offset + page_size + 1])
        if self.number > 1 and not rows:
            raise NotFound("Invalid page.")
        self.has_next = len(rows) > page_size
        rows = rows[:page_size]
        self.count = max(counted, offset + len(rows) + (1 if self.has_next else 0))
        self.fast = True
        return rows

    def get_paginated_response(self, data):  # noqa: ANN001, ANN201
        if not getattr(self, "fast", False):
            return super().get_paginated_response(data)
        url = self.request.build_absolute_uri()
        next_link = replace_query_param(url, self.page_query_param, self.number + 1) if self.has_next else None
        previous_link = None
        if self.number > 1:
            previous_link = (
                remove_query_param(url, self.page_query_param)
                if self.number == 2
                else replace_query_param(url, self.page_query_param, self.number - 1)
            )
        return Response({"count": self.count, "next": next_link, "previous": previous_link, "results": data})
