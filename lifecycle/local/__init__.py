"""The local runtime: Azurite, the durable local queue and the local HTTP server."""
