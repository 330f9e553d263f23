"""SIP MESSAGE: inbound messages, outbound messages and the ``<Sms>``/``<Message>`` verbs."""
