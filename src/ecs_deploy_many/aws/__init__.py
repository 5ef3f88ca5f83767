"""Talking to AWS: sessions and clients, the ECS gateway, rate limits."""
