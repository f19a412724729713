//! Trace-driven hit-ratio comparison of the eviction policies (not a timing benchmark).
//!
//! `cargo bench -p baton-engine --bench hitratio` prints, for each trace and cache size,
//! the miss ratios of S3-FIFO, exact LRU and random eviction and S3-FIFO's miss reduction
//! relative to LRU, then an ablation of S3-FIFO's tunables. Every trace comes from a fixed
//! seed, so the numbers are reproducible. `HITRATIO_REQUESTS=N` shortens the traces.
//!
//! The replay mimics the store: keys get slab ids from a free list (ids are reused, as in
//! the store), a miss inserts the key, and the policy evicts while over the byte budget.

use std::time::Instant;

use baton_engine::evict::{ExactLru, Policy, Random, S3Fifo, S3FifoConfig};

const KEYS: u32 = 1_000_000;
const REQUESTS: usize = 10_000_000;
const NIL: u32 = u32::MAX;

fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64* with a fixed seed per trace.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix64(seed) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// Zipf(s) over ranks 1..=n by rejection-inversion (Hörmann & Derflinger 1996):
/// O(1) per sample, no table.
struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

fn helper1(x: f64) -> f64 {
    // ln(1+x)/x, stable near 0
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

fn helper2(x: f64) -> f64 {
    // (e^x - 1)/x, stable near 0
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

impl Zipf {
    fn new(n: u32, s: f64) -> Zipf {
        let mut z = Zipf {
            n: f64::from(n),
            s,
            h_x1: 0.0,
            h_n: 0.0,
            cut: 0.0,
        };
        z.h_x1 = z.h_int(1.5) - 1.0;
        z.h_n = z.h_int(z.n + 0.5);
        z.cut = 2.0 - z.h_int_inv(z.h_int(2.5) - z.h(2.0));
        z
    }
    /// x^-s
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }
    /// Integral of h: (x^(1-s) - 1)/(1-s), ln x at s = 1.
    fn h_int(&self, x: f64) -> f64 {
        let lx = x.ln();
        helper2((1.0 - self.s) * lx) * lx
    }
    fn h_int_inv(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }
    /// A rank in 1..=n.
    fn sample(&self, rng: &mut Rng) -> u32 {
        loop {
            let u = self.h_n + rng.f64() * (self.h_x1 - self.h_n);
            let x = self.h_int_inv(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.h_int(k + 0.5) - self.h(k) {
                return k as u32;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Trace {
    Zipf08,
    Zipf10,
    /// Zipf 1.0; every 400k requests a sequential scan of 100k keys never seen again.
    Scan,
    /// Zipf 1.0 whose rank -> key mapping is replaced by a fresh random one every
    /// `.0` requests.
    Shift(usize),
}

const SHIFT_EVERY: usize = 1_000_000;

impl Trace {
    fn name(self) -> String {
        match self {
            Trace::Zipf08 => "zipf-0.8".into(),
            Trace::Zipf10 => "zipf-1.0".into(),
            Trace::Scan => "zipf-1.0+scans".into(),
            Trace::Shift(n) => format!("zipf-1.0 shift/{}k", n / 1000),
        }
    }

    fn seed(self) -> u64 {
        match self {
            Trace::Zipf08 => 1,
            Trace::Zipf10 => 2,
            Trace::Scan => 3,
            Trace::Shift(n) => 4 + n as u64,
        }
    }

    fn generate(self, requests: usize) -> Vec<u32> {
        let mut rng = Rng::new(self.seed());
        let zipf = Zipf::new(KEYS, if self == Trace::Zipf08 { 0.8 } else { 1.0 });
        let mut out = Vec::with_capacity(requests);
        let (mut a, mut b) = (1u64, 0u64);
        let mut next_scan_key = KEYS;
        while out.len() < requests {
            let i = out.len();
            match self {
                Trace::Scan if i % 500_000 >= 400_000 => {
                    out.push(next_scan_key);
                    next_scan_key += 1;
                    continue;
                }
                Trace::Shift(every) if i % every == 0 && i > 0 => {
                    // A random affine bijection of 0..KEYS: a must be coprime with
                    // 10^6, so it ends in 1, 3, 7 or 9.
                    let last = [1, 3, 7, 9][rng.below(4) as usize];
                    a = 10 * rng.below(u64::from(KEYS / 10)) + last;
                    b = rng.below(u64::from(KEYS));
                }
                _ => {}
            }
            let rank = u64::from(zipf.sample(&mut rng) - 1);
            out.push(((a * rank + b) % u64::from(KEYS)) as u32);
        }
        out
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Sizes {
    Unit,
    /// 32..=1024 bytes per key, fixed per key.
    Variable,
}

fn size_of(sizes: Sizes, key: u32) -> u32 {
    match sizes {
        Sizes::Unit => 1,
        Sizes::Variable => 32 + (mix64(u64::from(key) ^ 0x5151) % 993) as u32,
    }
}

/// Byte budget for a cache holding `pct` percent of the key space.
fn budget(sizes: Sizes, pct: u64) -> u64 {
    let total: u64 = (0..KEYS).map(|k| u64::from(size_of(sizes, k))).sum();
    total * pct / 100
}

/// Replays `trace` like the store would; returns the number of misses.
fn replay<P: Policy>(p: &mut P, trace: &[u32], sizes: Sizes, budget: u64) -> u64 {
    let max_key = trace.iter().copied().max().unwrap_or(0) as usize;
    let mut key_to_id = vec![NIL; max_key + 1];
    let mut id_to_key: Vec<u32> = Vec::new();
    let mut free: Vec<u32> = Vec::new();
    let mut misses = 0u64;
    for &key in trace {
        let id = key_to_id[key as usize];
        if id != NIL {
            p.access(id);
            continue;
        }
        misses += 1;
        let id = free.pop().unwrap_or_else(|| {
            id_to_key.push(NIL);
            id_to_key.len() as u32 - 1
        });
        key_to_id[key as usize] = id;
        id_to_key[id as usize] = key;
        p.insert(id, mix64(u64::from(key)), size_of(sizes, key));
        while p.bytes() > budget {
            let v = p.evict().expect("over budget but nothing to evict");
            key_to_id[id_to_key[v as usize] as usize] = NIL;
            free.push(v);
        }
    }
    misses
}

struct Row {
    trace: String,
    sizes: Sizes,
    pct: u64,
    lru: f64,
}

fn ratio(misses: u64, trace: &[u32]) -> f64 {
    misses as f64 / trace.len() as f64
}

fn reduction(m: f64, lru: f64) -> String {
    format!("{:+.1}%", 100.0 * (1.0 - m / lru))
}

fn check_zipf() {
    // The sampler must reproduce P(rank 1) = 1/H(n, s).
    let zipf = Zipf::new(KEYS, 1.0);
    let harmonic: f64 = (1..=KEYS).map(|k| 1.0 / f64::from(k)).sum();
    let mut rng = Rng::new(99);
    let n = 2_000_000;
    let ones = (0..n).filter(|_| zipf.sample(&mut rng) == 1).count();
    let (got, want) = (ones as f64 / n as f64, 1.0 / harmonic);
    assert!((got / want - 1.0).abs() < 0.02, "zipf P(1) {got} vs {want}");
}

fn s3(b: u64, cfg: S3FifoConfig, trace: &[u32], sizes: Sizes) -> (f64, S3Fifo) {
    let mut p = S3Fifo::with_config(b, cfg);
    let m = replay(&mut p, trace, sizes, b);
    (ratio(m, trace), p)
}

fn main() {
    let requests = std::env::var("HITRATIO_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REQUESTS);
    let start = Instant::now();
    check_zipf();
    let traces = [
        Trace::Zipf08,
        Trace::Zipf10,
        Trace::Scan,
        Trace::Shift(SHIFT_EVERY),
    ];
    let generated: Vec<(Trace, Vec<u32>)> =
        traces.iter().map(|&t| (t, t.generate(requests))).collect();
    let trace_of = |t: Trace| &generated.iter().find(|(g, _)| *g == t).unwrap().1;

    println!("{KEYS} keys, {requests} requests per trace; miss ratio = misses / requests.");
    println!("S3-FIFO = adaptive default; S3-FIFO fixed = the paper's (10% small queue).");
    println!("vs LRU = 1 - misses / LRU misses (positive: fewer misses than LRU).");
    println!();
    println!(
        "| trace | sizes | cache | LRU | S3-FIFO | vs LRU | S3-FIFO fixed | vs LRU | random \
         | S3-FIFO meta B/item |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    // Variable sizes change little under Zipf (size is independent of popularity), so
    // they run on two traces only to keep the whole bench within a couple of minutes.
    let var_traces = [Trace::Zipf10, Trace::Shift(SHIFT_EVERY)];
    for sizes in [Sizes::Unit, Sizes::Variable] {
        let set: &[Trace] = if sizes == Sizes::Unit {
            &traces
        } else {
            &var_traces
        };
        for &t in set {
            let trace = trace_of(t);
            for pct in [1, 10] {
                let b = budget(sizes, pct);
                let lru = ratio(replay(&mut ExactLru::new(), trace, sizes, b), trace);
                let (ad, p) = s3(b, S3FifoConfig::default(), trace, sizes);
                let (fx, _) = s3(b, S3FifoConfig::fixed(), trace, sizes);
                let rnd = ratio(replay(&mut Random::new(7), trace, sizes, b), trace);
                let meta = p.heap_bytes() as f64 / p.len().max(1) as f64;
                println!(
                    "| {} | {} | {}% | {:.4} | {:.4} | {} | {:.4} | {} | {:.4} | {:.1} |",
                    t.name(),
                    if sizes == Sizes::Unit {
                        "unit"
                    } else {
                        "32-1024 B"
                    },
                    pct,
                    lru,
                    ad,
                    reduction(ad, lru),
                    fx,
                    reduction(fx, lru),
                    rnd,
                    meta
                );
                rows.push(Row {
                    trace: t.name(),
                    sizes,
                    pct,
                    lru,
                });
            }
        }
    }

    // Ablation over the tunables, unit sizes.
    let d = S3FifoConfig::default();
    let f = S3FifoConfig::fixed();
    let variants = [
        ("adaptive (default: S 1-50%, promote at 1 hit, ghost 1x)", d),
        (
            "adaptive, S up to 90%",
            S3FifoConfig {
                small_max: 0.9,
                ..d
            },
        ),
        (
            "adaptive, promote at 2 hits",
            S3FifoConfig { promote_at: 2, ..d },
        ),
        ("fixed (paper: S 10%, ghost 1x main)", f),
        (
            "fixed, promote at 2 hits",
            S3FifoConfig { promote_at: 2, ..f },
        ),
        (
            "fixed, no ghost",
            S3FifoConfig {
                ghost_ratio: 0.0,
                ..f
            },
        ),
    ];
    println!();
    println!("S3-FIFO variants, unit sizes: miss ratio (vs LRU)");
    println!();
    let cols: Vec<(Trace, u64)> = traces.iter().flat_map(|&t| [(t, 1), (t, 10)]).collect();
    let mut header = String::from("| variant |");
    let mut rule = String::from("|---|");
    for (t, pct) in &cols {
        header += &format!(" {} {}% |", t.name(), pct);
        rule += "---|";
    }
    println!("{header}\n{rule}");
    for (name, cfg) in variants {
        let mut line = format!("| {name} |");
        for &(t, pct) in &cols {
            let trace = trace_of(t);
            let b = budget(Sizes::Unit, pct);
            let (m, _) = s3(b, cfg, trace, Sizes::Unit);
            let lru = rows
                .iter()
                .find(|r| r.trace == t.name() && r.sizes == Sizes::Unit && r.pct == pct)
                .unwrap()
                .lru;
            line += &format!(" {:.4} ({}) |", m, reduction(m, lru));
        }
        println!("{line}");
    }

    // How fast the hot set moves matters most to the shift trace: sweep its period.
    println!();
    println!("Shift period sweep, unit sizes: miss ratio (vs LRU)");
    println!();
    println!("| trace | cache | LRU | S3-FIFO | vs LRU | S3-FIFO fixed | vs LRU |");
    println!("|---|---|---|---|---|---|---|");
    for every in [250_000, 4_000_000] {
        let t = Trace::Shift(every);
        let trace = t.generate(requests);
        for pct in [1, 10] {
            let b = budget(Sizes::Unit, pct);
            let lru = ratio(replay(&mut ExactLru::new(), &trace, Sizes::Unit, b), &trace);
            let (ad, _) = s3(b, d, &trace, Sizes::Unit);
            let (fx, _) = s3(b, f, &trace, Sizes::Unit);
            println!(
                "| {} | {}% | {:.4} | {:.4} | {} | {:.4} | {} |",
                t.name(),
                pct,
                lru,
                ad,
                reduction(ad, lru),
                fx,
                reduction(fx, lru)
            );
        }
    }
    println!();
    println!("total time {:.1} s", start.elapsed().as_secs_f64());
}
