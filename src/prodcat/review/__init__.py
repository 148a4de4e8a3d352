"""The review queue and feedback store (:mod:`.store`)."""

#: how long a PostgreSQL connection may take to open, and a server may stay silent (TCP) before its connection is
#: dropped, by default (seconds); here, apart from the store, so that ``prodcat serve``'s parser states them
#: without importing SQLAlchemy
CONNECT_TIMEOUT_S = 10
NETWORK_TIMEOUT_S = 60
