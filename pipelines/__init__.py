"""The generation engine: specs, compiler, plans, runner, backends, model cache, samplers.

Importing the package loads nothing, so `pipelines.errors` (the errors a person reads, which every
room raises) is a leaf: auth, storage and the web routes import it without the compiler, the node
registry or torch. The pure parts (no torch) are re-exported by name and load on first use
(`from pipelines import Compiler`); the runner lives in `pipelines.runner` and is imported where jobs
run.
"""
import importlib

_EXPORTS = {
    "AtelierError": "pipelines.errors", "InvalidRequest": "pipelines.errors", "JobCancelled": "pipelines.errors",
    "NotFound": "pipelines.errors", "Problem": "pipelines.errors",
    "Compiler": "pipelines.compiler",
    "ExecutionPlan": "pipelines.plan", "ModelRef": "pipelines.plan", "Txt2ImgStep": "pipelines.plan",
    "REGISTRY": "pipelines.nodes",
    "Txt2Img": "pipelines.spec", "WorkflowSpec": "pipelines.spec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Load a re-exported name from its module when it is first asked for (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
