"""The generation engine: specs, compiler, plans, runner, backends, model cache, samplers.

Only the pure parts (no torch) are re-exported here, so the web process can validate and quote
without loading torch. The runner lives in `pipelines.runner` and is imported where jobs run.
"""
from pipelines.compiler import Compiler
from pipelines.errors import AtelierError, InvalidRequest, JobCancelled, NotFound, Problem
from pipelines.plan import ExecutionPlan, ModelRef, Txt2ImgStep
from pipelines.nodes import REGISTRY
from pipelines.spec import Txt2Img, WorkflowSpec

__all__ = ["AtelierError", "Compiler", "ExecutionPlan", "InvalidRequest", "JobCancelled", "ModelRef",
           "NotFound", "Problem", "REGISTRY", "Txt2Img", "Txt2ImgStep", "WorkflowSpec"]
