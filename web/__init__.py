"""Pages, templates, translations and browser code of the platform."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
