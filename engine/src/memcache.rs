//! memcached operations (placeholder until written).
