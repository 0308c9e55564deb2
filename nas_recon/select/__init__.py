"""Selection by retrained quality: a pool of candidates in a FLOPs band, successive halving on Optuna."""
