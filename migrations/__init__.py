"""Alembic migrations of the forensics gallery database.

``SCRIPT_LOCATION`` is the folder holding ``env.py`` and ``versions/``; :mod:`gallery.db`
runs the migrations programmatically from there, so no ``alembic.ini`` is needed at run time.
"""

from pathlib import Path

#: Folder with env.py, script.py.mako and versions/ (an Alembic script location).
SCRIPT_LOCATION: Path = Path(__file__).resolve().parent
