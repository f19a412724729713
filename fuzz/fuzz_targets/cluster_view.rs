//! The cluster view parser (`baton_net::cluster::wire`) over arbitrary bytes, as a node
//! reads a peer's `CLUSTER BATON-VIEW` payload or its own config file: no panic; a view
//! that parses merges into a node's state without panicking, and the state it gives
//! renders back to a view that parses.

#![no_main]

use baton_net::cluster::state::State;
use baton_net::cluster::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = wire::parse_view(data);
    if let Ok(view) = wire::parse_message(data) {
        let mut st = State::fresh("f".repeat(40), "127.0.0.1".into(), 7000);
        let _ = st.merge(&view, Some(("127.0.0.1", 7001)), 1);
        assert!(wire::parse_message(st.render_message().as_bytes()).is_ok());
        if let Ok(loaded) = State::from_view(view, "127.0.0.1".into(), 7000) {
            assert!(wire::parse_view(loaded.render_file().as_bytes()).is_ok());
        }
    }
});
