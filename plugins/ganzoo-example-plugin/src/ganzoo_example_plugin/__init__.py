"""Example ganzoo plugin: components announced through entry points (see pyproject.toml)."""
