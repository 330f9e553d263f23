"""Every engine-neutral query of the :class:`~rcmlrouter.store.base.Store`, in one class: an
engine store is its engine class (transactions, dialect, bulk paths) plus this."""

from __future__ import annotations

from rcmlrouter.store.queries_accounts import AccountQueries
from rcmlrouter.store.queries_applications import ApplicationQueries
from rcmlrouter.store.queries_call_log import CallLogQueries
from rcmlrouter.store.queries_conferences import ConferenceQueries
from rcmlrouter.store.queries_idempotency import IdempotencyQueries
from rcmlrouter.store.queries_messages import MessageQueries
from rcmlrouter.store.queries_recordings import RecordingQueries
from rcmlrouter.store.queries_records import RecordQueries
from rcmlrouter.store.queries_retention import RetentionQueries
from rcmlrouter.store.queries_streams import StreamQueries


class StoreQueries(
    AccountQueries,
    ApplicationQueries,
    MessageQueries,
    RecordQueries,
    CallLogQueries,
    RecordingQueries,
    IdempotencyQueries,
    RetentionQueries,
    ConferenceQueries,
    StreamQueries,
):
    """Accounts, applications, numbers, inventory, records, the call log, messages,
    recordings, idempotency keys, retention, conferences, media streams."""
