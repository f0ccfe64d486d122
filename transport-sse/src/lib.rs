//! The Server-Sent Events transport of tickcast (being built).
