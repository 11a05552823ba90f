"""Adapter for the SaaS Fulfillment API v2: the HTTP client, its tokens and its retry policy."""

from __future__ import annotations

from lifecycle.marketplace.auth import MsalTokenProvider, StaticTokenProvider, TokenProvider
from lifecycle.marketplace.client import API_VERSION, HttpMarketplaceApi
from lifecycle.retry import RetryPolicy, parse_retry_after, set_testing

__all__ = [
    "API_VERSION",
    "HttpMarketplaceApi",
    "MsalTokenProvider",
    "RetryPolicy",
    "StaticTokenProvider",
    "TokenProvider",
    "parse_retry_after",
    "set_testing",
]
