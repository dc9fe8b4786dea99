"""Runs: what one fit is asked to do (`RunSpecs`) and the engine that trains, evaluates and writes it (`run`)."""
