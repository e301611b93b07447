"""feedgate's settings: the models (``settings.py``, with the console, metrics and tracing sections in
``watching.py``), how the layers load (``loading.py``), the rules shared with the HTTP side (``checks.py``)
and the generated reference (``reference.py``).

Importers use the names re-exported here.
"""

from feedgate.config.checks import origin_of
from feedgate.config.loading import dotted_overrides, env_name, load_settings, mask_url, masked, top_level_env
from feedgate.config.settings import AnalysisSettings, Settings

__all__ = [
    "AnalysisSettings",
    "Settings",
    "dotted_overrides",
    "env_name",
    "load_settings",
    "mask_url",
    "masked",
    "origin_of",
    "top_level_env",
]
