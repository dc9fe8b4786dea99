"""Runs: what one fit is asked to do (`RunSpecs`) and the engine that trains, evaluates and writes it (`run`),
the run folder's format (`folder`), and a comparison of many runs (`comparison`)."""
