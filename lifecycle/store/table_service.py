"""The Table Storage SDK's service client, built the same way for every adapter.

One choice beyond the SDK's defaults. Its transport (requests) may look for proxy and
CA-bundle variables in the environment, and when allowed it does so on every request,
walking the whole environment twice. Measured on Azurite with 146 variables set (a
Functions host sets dozens of its own besides every app setting), skipping the look took a
point read's client CPU from 4.3 to 3.1 ms and an upsert's from 4.2 to 2.9 ms.

On Linux those variables are the only place requests finds a proxy, so when none is set
the look is skipped (and with it the look in ~/.netrc, whose credentials would only have
replaced the SDK's own signature). A CA bundle named there (`REQUESTS_CA_BUNDLE`, else
`CURL_CA_BUNDLE`, as requests reads them) is read once here and given to the client, so a
host that sets one keeps it without the look. When a proxy variable is set, the SDK reads
the environment as before: a host behind a proxy keeps its proxy and its exceptions
(`NO_PROXY`). Elsewhere (a developer's macOS or Windows machine, whose system settings can
name a proxy too) the SDK's default stands.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential, TokenCredential
from azure.data.tables import TableServiceClient

# What requests reads from the environment besides the proxies (`*_proxy`, any case), first found first.
_CA_BUNDLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

Credential = TokenCredential | AzureNamedKeyCredential | AzureSasCredential


def environment_options(environ: Mapping[str, str] | None = None, platform: str | None = None) -> dict[str, Any]:
    """The client options that skip the per-request environment look when no proxy is set (with
    the CA bundle the look would have found, if any); none, the SDK's default, otherwise."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform != "linux":
        return {}
    if any(name.lower().endswith("_proxy") for name in environ):
        return {}
    bundle = next((environ[name] for name in _CA_BUNDLES if environ.get(name)), None)
    return {"use_env_settings": False} | ({} if bundle is None else {"connection_verify": bundle})


def from_connection_string(conn: str, **options: Any) -> TableServiceClient:
    """A service client; `options` go to the SDK (e.g. retry_total) and win over ours."""
    return TableServiceClient.from_connection_string(conn, **(environment_options() | options))


def from_endpoint(endpoint: str, credential: Credential, **options: Any) -> TableServiceClient:
    """A service client signed in with `credential` (managed identity: a TokenCredential); `options` as above."""
    return TableServiceClient(endpoint, credential=credential, **(environment_options() | options))
