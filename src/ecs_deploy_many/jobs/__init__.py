"""Scheduled release jobs: what an unattended run needs besides deploying (its lock)."""
