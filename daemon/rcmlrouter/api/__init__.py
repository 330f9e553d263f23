"""rcmlrouter.api: the Restcomm-compatible provisioning REST API (aiohttp.web)."""

from rcmlrouter.api.app import create_api_app

__all__ = ["create_api_app"]
