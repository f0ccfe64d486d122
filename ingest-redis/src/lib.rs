//! Redis pub/sub and Streams ingest for tickcast (being built).
