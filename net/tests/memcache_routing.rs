//! The codec driven the way the server drives it across cores: every op goes to the shard
//! that owns its key, a multi-key get is split by shard and its results are put back in
//! request order before encoding. The conversation must read exactly as it does against a
//! single shard.

use baton_engine::memcache::{execute, McCtx};
use baton_engine::Shard;
use baton_net::memcache::testing::Session;
use baton_net::memcache::{
    encode, encode_error, encode_multi, encode_ok, McConn, McLimits, McParser, McRequest, McResult,
};
use bytes::BytesMut;

/// Several shards behind one connection.
struct Cores {
    shards: Vec<Shard>,
    parser: McParser,
    buf: BytesMut,
    now_ms: u64,
}

impl Cores {
    fn new(n: usize) -> Cores {
        Cores {
            shards: (0..n).map(Shard::new).collect(),
            parser: McParser::new(),
            buf: BytesMut::new(),
            now_ms: Session::new().now_ms,
        }
    }

    fn owner(&self, key: &[u8]) -> usize {
        let h = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        (h % self.shards.len() as u64) as usize
    }

    fn talk(&mut self, input: &str) -> String {
        self.buf.extend_from_slice(input.as_bytes());
        let ctx = McCtx::new(self.now_ms);
        let mut out = Vec::new();
        while let Some(request) = self
            .parser
            .parse(&mut self.buf, &McLimits::default())
            .unwrap()
        {
            match request {
                McRequest::Single { op, reply } => {
                    let core = self.owner(op.key());
                    let result = execute(&mut self.shards[core], op, &ctx);
                    encode(&reply, &result, &mut out);
                }
                McRequest::Multi { ops, cas } => {
                    // Scatter: one batch per core, each op tagged with its position.
                    let mut batches: Vec<Vec<(usize, _)>> = vec![Vec::new(); self.shards.len()];
                    for (i, op) in ops.into_iter().enumerate() {
                        batches[self.owner(op.key())].push((i, op));
                    }
                    // Gather: results land back in request order.
                    let mut results: Vec<Option<McResult>> = Vec::new();
                    for (core, batch) in batches.into_iter().enumerate().rev() {
                        for (i, op) in batch {
                            if results.len() <= i {
                                results.resize(i + 1, None);
                            }
                            results[i] = Some(execute(&mut self.shards[core], op, &ctx));
                        }
                    }
                    let results: Vec<McResult> = results.into_iter().map(Option::unwrap).collect();
                    encode_multi(cas, &results, &mut out);
                }
                McRequest::Conn(McConn::FlushAll { noreply, .. }) => {
                    self.shards.iter_mut().for_each(Shard::flush);
                    encode_ok(noreply, &mut out);
                }
                McRequest::Conn(other) => panic!("not scripted: {other:?}"),
                McRequest::Error(text) => encode_error(text, &mut out),
            }
        }
        String::from_utf8(out).unwrap()
    }
}

#[test]
fn routed_conversation_reads_like_one_shard() {
    let script = [
        "set alpha 1 0 1\r\nA\r\nset beta 2 0 1\r\nB\r\nset gamma 3 0 1\r\nC\r\n",
        "set delta 4 0 1\r\nD\r\nset epsilon 5 0 1\r\nE\r\n",
        "get epsilon nope alpha delta beta gamma alpha\r\n",
        "append beta 0 0 2\r\nbb\r\nincr gamma 1\r\nset n 0 0 1\r\n1\r\nincr n 41\r\n",
        "gat 100 beta n gamma\r\n",
        "ms meta 3 T30 F7\r\nxyz\r\nmg meta v f t k\r\nmd alpha q\r\nma n v\r\n",
        "delete beta\r\nget alpha beta\r\nbogus\r\n",
        "flush_all\r\nget epsilon delta\r\n",
    ];
    let mut one = Session::new();
    let mut cores = Cores::new(3);
    let used: std::collections::HashSet<usize> = ["alpha", "beta", "gamma", "delta", "epsilon"]
        .iter()
        .map(|k| cores.owner(k.as_bytes()))
        .collect();
    assert!(
        used.len() > 1,
        "the keys must spread over cores for this test to mean anything"
    );
    for step in script {
        assert_eq!(cores.talk(step), one.talk(step), "{step:?}");
    }
}
