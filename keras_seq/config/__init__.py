"""What a run is made of, before anything runs: the option table (`options`)."""
