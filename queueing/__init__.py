"""Jobs on a Huey queue: submit / cancel / status for the web side, the executor for workers."""
from queueing.catalogue import ArtifactCatalogue
from queueing.executor import JobExecutor, build_runner
from queueing.huey_app import make_huey, start_embedded_consumer
from queueing.service import JobService, status_of
from queueing.tasks import register_tasks

__all__ = ["ArtifactCatalogue", "JobExecutor", "JobService", "build_runner", "make_huey", "register_tasks", "start_embedded_consumer",
           "status_of"]
