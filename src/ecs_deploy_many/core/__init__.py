"""The vocabulary every layer shares: targets, results, events, redaction, time, ECS facts."""
