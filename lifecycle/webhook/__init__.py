"""The webhook's fast path: authenticate, parse, record, decide, enqueue."""
