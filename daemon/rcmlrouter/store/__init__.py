"""rcmlrouter.store."""
