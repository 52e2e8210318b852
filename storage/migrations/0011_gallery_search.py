"""What the Gallery searches and pages by (issue 14, item 6): each holding's `prompt` and `model` (the prompt
and model id of the step of its plan that made it; "" for uploads), and an index on (owner, created_at) so
that a page of one user's thousands of holdings, newest first, is read by the index, not by sorting them all.

Holdings from before get the prompt and model from their job's plan where the job is still there."""
import json

from peewee import CharField, TextField


def search_fields(plan_json: str, step_id: str) -> tuple[str, str]:
    """(prompt, model id) of step `step_id` of a plan (JSON text); a step without a prompt (an upscale)
    takes the plan's first prompt, one without a model the plan's first model. ("", "") for a plan this
    cannot read."""
    try:
        steps = json.loads(plan_json).get("steps", [])
    except (ValueError, AttributeError):
        return "", ""
    steps = [s for s in steps if isinstance(s, dict)]
    own = [s for s in steps if s.get("id") == step_id]
    ordered = own + steps
    prompt = next((s["prompt"] for s in ordered if isinstance(s.get("prompt"), str) and s["prompt"]), "")
    model = next((s["model"]["id"] for s in ordered if isinstance(s.get("model"), dict)
                  and isinstance(s["model"].get("id"), str)), "")
    return prompt, model


def up(migrator, db):
    migrator.migrate(migrator.add_column("artifact_owner", "prompt", TextField(default="")),
                     migrator.add_column("artifact_owner", "model", CharField(default="")),
                     migrator.add_index("artifact_owner", ("owner_id", "created_at"), False))
    rows = db.execute_sql("SELECT o.id, o.step_id, j.plan FROM artifact_owner o JOIN job j ON j.id = o.job_id "
                          "WHERE o.kind <> 'upload'").fetchall()
    for holding_id, step_id, plan in rows:
        prompt, model = search_fields(plan or "", step_id or "")
        if prompt or model:
            db.execute_sql("UPDATE artifact_owner SET prompt = %s, model = %s WHERE id = %s".replace(
                "%s", db.param), (prompt, model, holding_id))


def down(migrator, db):
    migrator.migrate(migrator.drop_index("artifact_owner", "artifact_owner_owner_id_created_at"),
                     migrator.drop_column("artifact_owner", "prompt"),
                     migrator.drop_column("artifact_owner", "model"))
