"""Deploying: image and task-definition rendering, the per-target pipeline, the engine."""
