//! RabbitMQ ingest for tickcast (being built).
