"""Datasets and verifiers per task family, and the toy stand-ins used at tiny scale."""

from pipo.tasks.registry import TaskData, Verifier, get_verifier, load_standin

__all__ = ["TaskData", "Verifier", "get_verifier", "load_standin"]
