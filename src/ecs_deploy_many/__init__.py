"""ecs-deploy-many: roll out container images to many Amazon ECS services at once."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ecs-deploy-many")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
