"""Alembic environment: runs migrations on the connection Fleuve hands over."""

from alembic import context

from fleuve.metadata.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    """Migrate through the connection `Database.upgrade` puts in the config's attributes."""
    conn = config.attributes["connection"]
    context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
