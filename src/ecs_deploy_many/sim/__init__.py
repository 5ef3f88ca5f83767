"""A local stand-in for the ECS control plane, speaking the real wire protocol."""
