"""SimMIM: multimodal retrieval and financial sentiment monitoring."""

__version__ = "0.1.0"
