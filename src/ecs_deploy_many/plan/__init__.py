"""The deploy plan: typed model and the YAML loader with file:line errors."""
