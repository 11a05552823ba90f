"""The `lifecycle` command line: run the local stack, play the marketplace, read our state.

    lifecycle serve                         the local stack (`make run`)
    lifecycle sandbox plans|purchase|...    the marketplace sandbox of the running stack
    lifecycle subscriptions show ID         our state and history of one subscription

Every read command takes `--json`. Commands other than `serve` find the running stack
through its state directory (`--state-dir`, LIFECYCLE_STATE_DIR, default `.local/`).
"""
