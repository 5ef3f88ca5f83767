"""Scheduled release jobs: what an unattended run checks before and while it deploys
(its lock, its release windows, its images' digests) and whom it tells."""
