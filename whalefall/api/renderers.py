"""The browsable API's HTML: DRF's pages carry inline styles, allowed on those pages only
(scripts stay WhaleFall's own files)."""

from rest_framework import renderers

BROWSABLE_POLICY = {"style-src": ["'unsafe-inline'"]}


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response._csp_update = BROWSABLE_POLICY  # read by django-csp's middleware
        return super().render(data, accepted_media_type, renderer_context)
