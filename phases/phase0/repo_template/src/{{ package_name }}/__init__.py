"""{{ project_name }}: replace this line with what the service does."""

from .core import slugify

__all__ = ["__version__", "slugify"]
__version__ = "0.1.0"
