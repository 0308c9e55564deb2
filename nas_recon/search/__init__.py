"""Search: the NNI supernet, the bilevel DARTS driver, the derivation rule (the only NNI users)."""
