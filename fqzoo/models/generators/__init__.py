"""Token generators (AR / FAR) register here."""
