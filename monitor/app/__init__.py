"""Application: config assembly, the pipeline, the daemon and its helpers, reports, replay and the
service layer (every operation a person performs), on top of the feature packages."""
