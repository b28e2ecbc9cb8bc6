"""SQLite, with write transactions taking turns inside a process (see base.py)."""
