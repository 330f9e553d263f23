"""rcmlrouter.rcml."""
