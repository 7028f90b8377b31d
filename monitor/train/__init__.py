"""Training beside inference: the shipped sentiment and topic models' builders, their
fitting code and the news templates they learn from, and a user's own topic training.
Scoring never imports this package; an import-linter contract checks it."""
