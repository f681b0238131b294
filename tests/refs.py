"""The shared reference material (real Flux layouts, the podinfo chart): ``shared/refs`` beside
the repository, where sessions and CI both have it; ``FERRY_REFS`` may point elsewhere."""
import os
from pathlib import Path

REFS = Path(os.environ.get("FERRY_REFS") or Path(__file__).resolve().parents[2] / "shared" / "refs")
FLUX_LAYOUTS = REFS / "flux-layouts"
PODINFO_CHART = REFS / "charts" / "podinfo"
