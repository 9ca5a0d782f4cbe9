"""SQLAlchemy storage: the embedded SQLite default and any SQLAlchemy URL (PostgreSQL tested)."""
