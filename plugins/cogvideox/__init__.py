"""placeholder: filled in by issue 15."""
