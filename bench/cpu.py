"""CPU seconds of another process (Azurite's node, say), to split a phase's cost between processes."""

from __future__ import annotations

import os


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux: /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
