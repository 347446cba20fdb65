"""Terms of use of MMD models: which files beside a model hold them (`files`)."""
