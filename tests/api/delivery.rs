//! Delivery tests (being written)
