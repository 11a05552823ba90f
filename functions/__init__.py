"""Azure Functions blueprints: decorator, parse, one service call, map the outcome. Nothing else.

Each module's `bp` is registered by `function_app.py`. Nothing here connects or reads
settings at import: the worker is built on the first invocation (`lifecycle.bootstrap.worker`).
"""
