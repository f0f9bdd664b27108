"""Alembic environment of the forensics gallery database.

Normally run programmatically by :func:`gallery.db.upgrade_to_head`, which passes an open
SQLAlchemy connection in ``config.attributes["connection"]`` (inside one transaction, with
foreign keys off while tables are rebuilt). For development it also works from the command line::

    alembic -c migrations/alembic.ini -x db=path/to/gallery.db upgrade head
    alembic -c migrations/alembic.ini -x db=postgresql://user@host/dbname upgrade head
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from gallery.location import GalleryLocation
from gallery.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kw) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: rebuild tables in batches
        compare_type=True,
        **kw,
    )


def _url() -> str:
    db = context.get_x_argument(as_dictionary=True).get("db")
    if db:
        location = GalleryLocation.parse(db)
        if location.url is not None:
            return location.url.render_as_string(hide_password=False)
        return f"sqlite:///{location.path}"
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass -x db=PATH or set sqlalchemy.url")
    return url


def run_migrations_offline() -> None:
    """Emit the SQL to stdout instead of running it (``alembic upgrade head --sql``)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against the connection given by the caller, or one opened from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url())
    try:
        with engine.begin() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
