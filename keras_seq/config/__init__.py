"""What a run is made of, before anything runs: the option table (`options`), a search's space (`search`),
the fast paths' settings (`speed`)."""
