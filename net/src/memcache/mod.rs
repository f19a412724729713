//! memcached codec (placeholder until written).
