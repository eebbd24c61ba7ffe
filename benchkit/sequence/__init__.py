"""The sequence layer: vocabularies, padding, Viterbi and candidate decoding, the random and majority baselines."""
