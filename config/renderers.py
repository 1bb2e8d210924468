"""The API's JSON renderer: DRF's, able to answer an error that quotes a lone UTF-16 surrogate.

A JSON body may carry `\\ud800`, which Python decodes to a lone surrogate: text that UTF-8 cannot encode.
A field refusing it often quotes the value ("\\ud800" is not a valid choice), and DRF renders without ASCII
escapes, so encoding the answer raised and the refusal became a 500. Such an answer is rendered again with
every non-ASCII character escaped (JSON allows `\\ud800` as an escape); any other answer is unchanged.
"""

from __future__ import annotations

from rest_framework import renderers


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):  # noqa: ANN001, ANN201 - DRF's
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            self.ensure_ascii = True  # this instance renders this one response
            return super().render(data, accepted_media_type, renderer_context)
