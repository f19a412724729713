//! The answers an old process reads on its forwarding links (`baton_net::cluster::mclink`):
//! a raw RESP2/RESP3 value on a handoff link, a `CLUSTER BATON-MC` array on a memcached
//! link, over arbitrary bytes. Neither parser may panic or claim more bytes than it was
//! given; a complete answer is complete in any longer buffer too, and with the same
//! length; every shorter prefix of a raw value is incomplete or an error.

#![no_main]

use baton_net::cluster::mclink::{parse_answer, resp_value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(n)) = resp_value(data, 0) {
        assert!(n > 0 && n <= data.len());
        let mut longer = data[..n].to_vec();
        longer.extend_from_slice(b"+tail\r\n");
        assert_eq!(resp_value(&longer, 0), Ok(Some(n)));
        for cut in 0..n {
            assert!(!matches!(resp_value(&data[..cut], 0), Ok(Some(_))));
        }
    }
    if let Ok(Some((_, n))) = parse_answer(data) {
        assert!(n > 0 && n <= data.len());
        assert_eq!(parse_answer(&data[..n]).map(|a| a.map(|(_, m)| m)), Ok(Some(n)));
    }
});
