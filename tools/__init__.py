"""What the command-line tools are built from, above the systems: the Predictor (also the
Python API), test-set evaluation and the training loop's set-up. The tools themselves are the
scripts at the repository root; each parses its options, builds from here, and runs.
"""
