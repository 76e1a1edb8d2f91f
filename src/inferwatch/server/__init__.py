"""HTTP servers of inferwatch (for now: the standalone ``/metrics`` server)."""
