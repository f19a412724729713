//! Eviction policies (placeholder until written).
