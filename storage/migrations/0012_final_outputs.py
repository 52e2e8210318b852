"""What the Gallery's "My outputs" lists (issue 14, item 3): each holding's `final`, whether its job made it as
one of the plan's final outputs. A hires fix's first picture and its enlargement are not; they stay reachable
through lineage and under "All".

Holdings from before get it from their job's plan where the job is still there (else they stay final)."""
import json

from peewee import BooleanField


def taken_steps(plan_json: str) -> set[str]:
    """The ids of the steps whose outputs another step of a plan (JSON text) takes; empty for a plan this
    cannot read."""
    try:
        steps = json.loads(plan_json).get("steps", [])
        return {source for step in steps for _, source in step.get("inputs", ())}
    except (ValueError, AttributeError, TypeError):
        return set()


def up(migrator, db):
    migrator.migrate(migrator.add_column("artifact_owner", "final", BooleanField(default=True)))
    rows = db.execute_sql("SELECT o.id, o.step_id, j.plan FROM artifact_owner o JOIN job j ON j.id = o.job_id "
                          "WHERE o.kind <> 'upload'").fetchall()
    for holding_id, step_id, plan in rows:
        if step_id and step_id in taken_steps(plan or ""):
            db.execute_sql("UPDATE artifact_owner SET final = %s WHERE id = %s".replace("%s", db.param),
                           (False, holding_id))


def down(migrator, db):
    migrator.migrate(migrator.drop_column("artifact_owner", "final"))
