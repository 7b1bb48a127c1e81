"""Make the KPI test helpers (kpi_gen) importable under --import-mode=importlib."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
