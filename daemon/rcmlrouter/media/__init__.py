"""rcmlrouter.media."""
