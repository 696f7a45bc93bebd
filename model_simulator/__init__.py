"""A stand-in for the paid model API: an OpenAI-compatible HTTP server on loopback (chat
completions, Files and Batch API) with adjustable latency and injected faults, for the demo,
the tests and the benchmarks. Its scores are not grades.

One module per concern, importing one way: `faults` (which faults, and what each does) and
`gullible` (a model an essay can talk into a better grade) below `config` and `chat` (the
chat-completions answer), `batch` (Files and Batch API) above `chat`, `server` (the app,
`LLMSimulator`, `serve_forever`) on top.
"""

from model_simulator.batch import BatchConfig, BatchStore
from model_simulator.config import SimulatorConfig
from model_simulator.faults import FAULTS, OVERSCORE, parse_fault_rates
from model_simulator.gullible import read_scores
from model_simulator.server import LLMSimulator, serve_forever

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
