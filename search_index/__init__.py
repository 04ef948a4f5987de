"""Catalogue search behind one interface (embedded engine by default, Meilisearch in production)."""
