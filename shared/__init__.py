"""Every Door platform library: envelope, outbox, consumer, db, telemetry, auth and infra."""
