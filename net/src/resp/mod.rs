//! RESP codec (placeholder until written).
