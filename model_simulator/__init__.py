"""A stand-in for the paid model API: an OpenAI-compatible HTTP server on loopback (chat
completions, Files and Batch API) with adjustable latency and injected faults, for the demo,
the tests and the benchmarks. Its scores are not grades.
"""

from model_simulator.batch import BatchConfig, BatchStore
from model_simulator.chat import (
    FAULTS,
    OVERSCORE,
    LLMSimulator,
    SimulatorConfig,
    parse_fault_rates,
    read_scores,
    serve_forever,
)

__all__ = [
    "FAULTS",
    "OVERSCORE",
    "BatchConfig",
    "BatchStore",
    "LLMSimulator",
    "SimulatorConfig",
    "parse_fault_rates",
    "read_scores",
    "serve_forever",
]
