// SHIM(obs): replaced by main's implementation on merge
//! The eviction policy names `maxmemory-policy` takes, reduced to parsing and naming.

/// What a shard does when it is over its memory budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionPolicy {
    Noeviction,
    AllkeysS3fifo,
    VolatileS3fifo,
    AllkeysRandom,
    VolatileTtl,
}

impl EvictionPolicy {
    pub fn parse(name: &str) -> Option<EvictionPolicy> {
        Some(match name.to_ascii_lowercase().as_str() {
            "noeviction" => EvictionPolicy::Noeviction,
            "allkeys-s3fifo" => EvictionPolicy::AllkeysS3fifo,
            "volatile-s3fifo" => EvictionPolicy::VolatileS3fifo,
            "allkeys-random" => EvictionPolicy::AllkeysRandom,
            "volatile-ttl" => EvictionPolicy::VolatileTtl,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            EvictionPolicy::Noeviction => "noeviction",
            EvictionPolicy::AllkeysS3fifo => "allkeys-s3fifo",
            EvictionPolicy::VolatileS3fifo => "volatile-s3fifo",
            EvictionPolicy::AllkeysRandom => "allkeys-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }
}
