"""Accounts: passwords, guests and balances on users; sessions, API keys, OAuth identities, the credit
ledger, per-owner artifact records, share links and the audit log."""
from peewee import BooleanField, CharField, DoubleField, ForeignKeyField, Model, TextField


def _tables(db):
    # A snapshot of the new tables at this migration (see 0001_initial.py for why).
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        class Meta:
            table_name = "user"

    class Artifact(Base):
        id = CharField(primary_key=True, max_length=64)

        class Meta:
            table_name = "artifact"

    class Session(Base):
        token_hash = CharField(max_length=64, unique=True)
        user = ForeignKeyField(User, on_delete="CASCADE")
        created_at = DoubleField()
        expires_at = DoubleField()

    class ApiKey(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        name = CharField(default="")
        prefix = CharField(max_length=16)
        key_hash = CharField(max_length=64, unique=True)
        created_at = DoubleField()
        last_used_at = DoubleField(null=True)
        revoked_at = DoubleField(null=True)

    class OAuthIdentity(Base):
        provider = CharField()
        subject = CharField()
        user = ForeignKeyField(User, on_delete="CASCADE")
        email = CharField(default="")
        created_at = DoubleField()

        class Meta:
            table_name = "oauth_identity"
        indexes = ((("provider", "subject"), True),)

    class CreditEntry(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        kind = CharField()
        amount = DoubleField()
        key = CharField(unique=True)
        job_id = CharField(max_length=32, default="", index=True)
        note = CharField(default="")
        created_at = DoubleField(index=True)

    class ArtifactOwner(Base):
        artifact = ForeignKeyField(Artifact, on_delete="CASCADE")
        owner = ForeignKeyField(User, on_delete="CASCADE")
        created_at = DoubleField(index=True)

        class Meta:
            indexes = ((("artifact", "owner"), True),)

    class ShareLink(Base):
        token = CharField(max_length=64, unique=True)
        owner = ForeignKeyField(User, on_delete="CASCADE")
        artifact_ids = TextField()
        show_recipe = BooleanField(default=True)
        created_at = DoubleField()
        revoked_at = DoubleField(null=True)

    class AuditEvent(Base):
        actor = ForeignKeyField(User, null=True, on_delete="SET NULL")
        action = CharField()
        target = ForeignKeyField(User, null=True, on_delete="SET NULL")
        details = TextField(default="{}")
        created_at = DoubleField(index=True)

    return [Session, ApiKey, OAuthIdentity, CreditEntry, ArtifactOwner, ShareLink, AuditEvent]


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("user", "password_hash", CharField(default="")),
        migrator.add_column("user", "is_guest", BooleanField(default=False)),
        migrator.add_column("user", "balance", DoubleField(default=0.0)),
        migrator.add_column("user", "stripe_customer", CharField(default="")),
        migrator.add_column("user", "stripe_subscription", CharField(default="")),
        migrator.add_index("user", ("stripe_customer",), False),
    )
    db.create_tables(_tables(db))
    # Every artifact so far is held by the user who made it; the local owner becomes an admin.
    db.execute_sql('INSERT INTO artifact_owner (artifact_id, owner_id, created_at) '
                   'SELECT id, owner_id, created_at FROM artifact')
    db.execute_sql("UPDATE \"user\" SET role = 'admin' WHERE role = 'owner'")


def down(migrator, db):
    db.drop_tables(list(reversed(_tables(db))))
    migrator.migrate(
        migrator.drop_index("user", "user_stripe_customer"),
        migrator.drop_column("user", "stripe_subscription"),
        migrator.drop_column("user", "stripe_customer"),
        migrator.drop_column("user", "balance"),
        migrator.drop_column("user", "is_guest"),
        migrator.drop_column("user", "password_hash"),
    )
