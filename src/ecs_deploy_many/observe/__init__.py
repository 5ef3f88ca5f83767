"""Watching a run: structured logs, live progress, reports."""
