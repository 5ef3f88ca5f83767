"""Command-line front doors: they translate flags and plans into targets and exit codes."""
