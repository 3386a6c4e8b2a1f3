"""ParamStore: hierarchical, versioned, typed configuration parameters, with labels, rollback,
recursive listing, `secret_ref` parameters and dynamic `{% … %}` values evaluated at read time."""
