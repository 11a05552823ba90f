"""Contract tests: the same assertions against each fake and its real adapter."""
