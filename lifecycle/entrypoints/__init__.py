"""Entry points shared by Azure Functions and the local runtime: the edges that map errors."""
