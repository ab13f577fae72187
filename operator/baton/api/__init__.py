"""Resource models (pydantic) and CRD generation."""
