"""One error tree for the whole worker, mapped to answers only at the edges.

    LifecycleError
    ├── PermanentError            retrying cannot help: record it with a reason
    │   ├── InvalidPayload        a webhook or API body we cannot make sense of
    │   ├── UnverifiedEvent       the operations API does not confirm the webhook
    │   ├── Unauthenticated       the webhook's bearer token is missing, forged or expired
    │   ├── InvalidQuery          an ops filter, id, page size or continuation we refuse (400)
    │   ├── UnknownSubscription   no subscription with this id is stored here (404)
    │   └── MarketplaceRejected   the Fulfillment API answered 4xx (status kept)
    │       ├── MarketplaceBadRequest    400
    │       ├── MarketplaceForbidden     403: app id / tenant do not match the offer
    │       ├── MarketplaceNotFound      404
    │       └── MarketplaceConflict      409: e.g. an operation already final
    └── TransientError            try again later (redelivery, 5xx to the marketplace)
        ├── ConcurrencyConflict   someone else changed the row first (ETag)
        ├── StorageUnavailable    Table Storage did not answer or failed
        ├── MarketplaceUnavailable  429/5xx/timeouts left after our retries
        ├── QueueUnavailable      the queue could not take the message
        ├── SigningKeysUnavailable  the OpenID metadata or JWKS could not be fetched
        └── TokenNotForUs         a marketplace token with one of our app id / tenant: a setting is wrong

Defined beside the service that raises them, in the same tree:

    PermanentError > CannotActivate       (services.activation) the subscription is Unsubscribed
    InvalidQuery > InvalidValue           (services.query_filter) the filter it names is refused
    TransientError > LeaseLost, OutOfTime (services.reconcile) a run that stops between pages
    TransientError > TooManyProblems      (services.reconcile_scan) failure after failure: the run stops
    TransientError > StackStopping        (local.timer) the local stack is stopping under a run
    LifecycleError > RunInProgress        (services.reconcile) another run holds the lease: neither
                                          permanent nor transient, a run that did not start;
                                          each edge that starts runs answers it by name

Outside the tree on purpose: SettingsError (a ValueError: the app cannot be built, before any
event), the CLI's CliError, and the sandbox's and local runtime's own errors.

The webhook answers 5xx for every TransientError (never 4xx: on ChangePlan and
ChangeQuantity a 4xx is a rejection). The queue function reschedules the message with
backoff when the marketplace or storage is unavailable, lets other transient errors raise
so the message is redelivered, and records permanent ones.
"""

from __future__ import annotations


class LifecycleError(Exception):
    """Base of every error the worker raises on purpose."""


class PermanentError(LifecycleError):
    """Retrying the same input cannot succeed."""


class TransientError(LifecycleError):
    """The same input may succeed later."""


class InvalidPayload(PermanentError):
    """A body we cannot turn into a typed value; the message says which field and why."""


class UnverifiedEvent(PermanentError):
    """The operations API does not confirm what the webhook claims."""


class Unauthenticated(PermanentError):
    """The webhook's bearer token does not prove the marketplace sent it (answered 401)."""


class InvalidQuery(PermanentError):
    """A filter, id, page size or continuation token we refuse; the message says which and why (400)."""


class UnknownSubscription(PermanentError):
    """No subscription with this id is stored here (404)."""


class MarketplaceRejected(PermanentError):
    """The Fulfillment API refused the request with a 4xx other than 429."""

    def __init__(self, message: str, *, status: int, request_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


class MarketplaceBadRequest(MarketplaceRejected):
    """400: the request is not valid for the subscription's current state."""


class MarketplaceForbidden(MarketplaceRejected):
    """403: usually the app id or tenant do not match the offer's technical configuration."""


class MarketplaceNotFound(MarketplaceRejected):
    """404: no such subscription or operation for this publisher."""


class MarketplaceConflict(MarketplaceRejected):
    """409: the target is already in a final state (an operation already acknowledged)."""


class ConcurrencyConflict(TransientError):
    """The stored row changed since it was read (ETag mismatch, or it already exists)."""


class StorageUnavailable(TransientError):
    """Table Storage failed or could not be reached."""


class MarketplaceUnavailable(TransientError):
    """The Fulfillment API kept failing (429, 5xx, timeouts) after our retries."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


class QueueUnavailable(TransientError):
    """The queue could not accept or hand out a message."""


class SigningKeysUnavailable(TransientError):
    """The webhook's signing keys could not be fetched: answer 503, never 4xx."""


class TokenNotForUs(TransientError):
    """A genuine marketplace token (valid signature, issued to the marketplace) with our app id
    but another tenant, or our tenant but another app id. Most likely one of our two settings
    is wrong, and a 401 would reject every plan and seat change: answer 503 (nothing is
    accepted either way)."""
