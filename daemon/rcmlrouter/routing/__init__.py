"""rcmlrouter.routing."""
