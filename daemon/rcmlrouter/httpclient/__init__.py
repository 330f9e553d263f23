"""The daemon's one outbound HTTP client: RCML fetches, status callbacks and ``<Play>`` files.

A lean HTTP/1.1 keep-alive client (the README's "Webhook client" section gives the measurement
that chose it over aiohttp, pyreqwest, rnet, aiosonic, niquests and curl_cffi):

- :mod:`~rcmlrouter.httpclient.client`: requests, redirects, the one stale-connection retry;
- :mod:`~rcmlrouter.httpclient.connection`: one connection, one exchange at a time, timeouts;
- :mod:`~rcmlrouter.httpclient.exchange`: the response parsed by ``httptools`` within limits,
  the request head, body decoding;
- :mod:`~rcmlrouter.httpclient.pool`: idle keep-alive connections, bounded and expiring;
- :mod:`~rcmlrouter.httpclient.addresses`: DNS (bounded cache) and ``webhooks.deny_networks``;
- :mod:`~rcmlrouter.httpclient.failures`: what can go wrong below HTTP.

It knows nothing of RCML or media: :mod:`rcmlrouter.rcml.fetch` and :mod:`rcmlrouter.media.cache`
use it and translate its failures.
"""
