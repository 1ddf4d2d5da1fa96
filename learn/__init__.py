"""The AI Architect Workbook's learner tool: scaffolds, grading, progress and the book.

Kept import-light on purpose: `learn --help` must stay fast, so submodules import their
heavy dependencies inside the functions that need them.
"""

from pathlib import Path

__version__ = "0.1.0"

#: The workbook checkout this package was installed from (editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent
