"""rcmlrouter.sip."""
