//! stylize-cloud: the fan-out job protocol (manifest, jobs, done markers) and its storage/queue transports.
