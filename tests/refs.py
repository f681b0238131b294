"""The reference data the tests read (real Flux layouts, CRDs and event example, the podinfo
chart): verbatim copies in ``tests/data``, sources and licences in its README. Only this folder:
a clone anywhere runs the suite."""
from pathlib import Path

REFS = Path(__file__).resolve().parent / "data"
FLUX_LAYOUTS = REFS / "flux-layouts"
PODINFO_CHART = REFS / "charts" / "podinfo"
FLUX_CRDS = REFS / "flux-crds"
EVENT_EXAMPLE = REFS / "flux-status" / "helmrelease-v2-event-example.yaml"
