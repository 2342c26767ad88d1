"""Sub-commands of `python -m breastapp`; see breastapp/__main__.py for the list."""
