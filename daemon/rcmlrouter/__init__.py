"""rcmlrouter: a SIP-facing number-routing daemon with a Restcomm-compatible provisioning API."""

__version__ = "0.1.0"
