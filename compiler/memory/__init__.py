"""Static memory planning: schedule -> liveness intervals -> offsets in one arena."""
from .planner import MemoryPlan, plan_model

__all__ = ["MemoryPlan", "plan_model"]
