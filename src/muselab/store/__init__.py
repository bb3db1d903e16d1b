"""Persistent state: the gallery, ratings, lineage and jobs, in one SQLite file (WAL)."""
