"""One training engine: the Lightning Trainer that search and retrain both run on."""
