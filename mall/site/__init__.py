"""The web shell: the app factory, the mall's own API and pages, and their registration."""
