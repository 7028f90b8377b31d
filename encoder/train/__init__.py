"""Training beside inference (as open_clip_train beside open_clip): fusion training on
cached tower outputs, backbone fine-tuning, self-training on the corpus, and the held-out
evaluation that judges them. Nothing that serves (encoding, search) imports this package;
an import-linter contract checks it."""
