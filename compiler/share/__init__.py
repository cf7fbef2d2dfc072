"""Package data shipped with bornc: templates, runtime sources and target descriptions."""
