"""Small shared helpers: checkpoints, visualisation, command-line error handling."""
