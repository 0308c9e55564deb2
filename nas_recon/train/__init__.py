"""Training glue: recipes, losses, checkpoints, the retraining loop, evaluation."""
