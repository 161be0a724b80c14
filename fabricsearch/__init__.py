"""fabricsearch: find fabrics by photo with deep variational and structural hashing (DVSH)."""

__version__ = "0.1.0"
