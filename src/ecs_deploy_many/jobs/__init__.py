"""Scheduled release jobs: what an unattended run needs beyond the deploy itself."""
