"""The center's figures: each matter keeps a copy of its incident's township, category and
channel (kept by triggers), and covering indexes over the registration and conclusion dates,
so a year's figures are two index scans with no join (≤ 2 s over 200k matters a year).

The copies (`fig_township`, `fig_category`, `fig_channel`) are written by the database itself:
on inserting a matter (from its incident, inserted first) and on every change of those three
columns of an incident (a correction at the window, a relocation), whatever code path makes it.
A later migration that rebuilds `matters` or `incidents` on SQLite (batch mode) must create the
triggers again (`create_triggers`).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (("fig_township", 64), ("fig_category", 32), ("fig_channel", 16))
REGISTERED_INDEX = ("ix_matters_fig_registered",
                    ["registered_at", "closure", "lead_code", "fig_township", "fig_category",
                     "fig_channel"])
CONCLUDED_INDEX = ("ix_matters_fig_concluded",
                   ["concluded_at", "closure", "result", "satisfaction", "due_at",
                    "notify_due_at", "lead_code", "fig_township", "fig_category", "fig_channel"])

SQLITE_TRIGGERS = (
    """CREATE TRIGGER matters_fig_insert AFTER INSERT ON matters BEGIN
         UPDATE matters SET
           fig_township = (SELECT township_code FROM incidents WHERE id = NEW.incident_id),
           fig_category = (SELECT category FROM incidents WHERE id = NEW.incident_id),
           fig_channel = (SELECT channel FROM incidents WHERE id = NEW.incident_id)
         WHERE incident_id = NEW.incident_id;
       END""",
    """CREATE TRIGGER incidents_fig_update AFTER UPDATE OF township_code, category, channel
       ON incidents BEGIN
         UPDATE matters SET fig_township = NEW.township_code, fig_category = NEW.category,
           fig_channel = NEW.channel
         WHERE incident_id = NEW.id;
       END""",
)
POSTGRES_TRIGGERS = (
    """CREATE FUNCTION matters_fig_fill() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         SELECT township_code, category, channel
           INTO NEW.fig_township, NEW.fig_category, NEW.fig_channel
           FROM incidents WHERE id = NEW.incident_id;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER matters_fig_insert BEFORE INSERT ON matters
       FOR EACH ROW EXECUTE FUNCTION matters_fig_fill()""",
    """CREATE FUNCTION incidents_fig_sync() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         UPDATE matters SET fig_township = NEW.township_code, fig_category = NEW.category,
           fig_channel = NEW.channel
         WHERE incident_id = NEW.id;
         RETURN NULL;
       END $$""",
    """CREATE TRIGGER incidents_fig_update AFTER UPDATE OF township_code, category, channel
       ON incidents FOR EACH ROW
       WHEN (OLD.township_code IS DISTINCT FROM NEW.township_code
             OR OLD.category IS DISTINCT FROM NEW.category
             OR OLD.channel IS DISTINCT FROM NEW.channel)
       EXECUTE FUNCTION incidents_fig_sync()""",
)


def create_triggers() -> None:
    """The triggers that keep the copies (for this database's dialect)."""
    statements = POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" \
        else SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    for name, size in COLUMNS:
        op.add_column("matters", sa.Column(name, sa.String(size), nullable=True))
    op.execute("UPDATE matters SET "
               "fig_township = (SELECT township_code FROM incidents WHERE id = incident_id), "
               "fig_category = (SELECT category FROM incidents WHERE id = incident_id), "
               "fig_channel = (SELECT channel FROM incidents WHERE id = incident_id)")
    create_triggers()
    for name, columns in (REGISTERED_INDEX, CONCLUDED_INDEX):
        op.create_index(name, "matters", columns)


def downgrade() -> None:
    for name, _ in (CONCLUDED_INDEX, REGISTERED_INDEX):
        op.drop_index(name, "matters")
    op.execute("DROP TRIGGER IF EXISTS incidents_fig_update" +
               (" ON incidents" if op.get_bind().dialect.name == "postgresql" else ""))
    op.execute("DROP TRIGGER IF EXISTS matters_fig_insert" +
               (" ON matters" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS incidents_fig_sync()")
        op.execute("DROP FUNCTION IF EXISTS matters_fig_fill()")
    with op.batch_alter_table("matters") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
