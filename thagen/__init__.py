"""thagen: the command line over mmd_loader, render, pipeline and training."""
