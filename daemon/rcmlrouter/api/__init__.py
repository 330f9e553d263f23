"""rcmlrouter.api."""
