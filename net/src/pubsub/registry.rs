//! One core's Pub/Sub registry: who on this core is subscribed to what, and the messages
//! its connection loop has yet to move into subscribers' output. Kept apart from the
//! commands ([`super`]) so that [`crate::netcore::NetCore`] can hold it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use baton_engine::glob::glob_match;
use baton_engine::reply::Reply;
use bytes::Bytes;

use crate::client::Client;
use crate::resp;

/// One core's subscriptions, by channel and by pattern, and the messages its loop has yet
/// to move into subscribers' output.
#[derive(Default)]
pub struct PubSub {
    channels: RefCell<HashMap<Bytes, Vec<Client>>>,
    patterns: RefCell<HashMap<Bytes, Vec<Client>>>,
    /// Encoded messages (or confirmations) per subscriber, in delivery order.
    pending: RefCell<Vec<(Client, Bytes)>>,
}

fn add(map: &RefCell<HashMap<Bytes, Vec<Client>>>, key: &Bytes, client: &Client) {
    map.borrow_mut()
        .entry(key.clone())
        .or_default()
        .push(client.clone());
}

fn remove(map: &RefCell<HashMap<Bytes, Vec<Client>>>, key: &[u8], client: &Client) {
    let mut map = map.borrow_mut();
    if let Some(list) = map.get_mut(key) {
        list.retain(|c| !Rc::ptr_eq(c, client));
        if list.is_empty() {
            map.remove(key);
        }
    }
}

impl PubSub {
    pub fn new() -> PubSub {
        PubSub::default()
    }

    /// Adds `client` to the subscribers of `name` (a pattern if `pattern`). The caller
    /// checked, with the client's session, that it was not subscribed yet.
    pub fn subscribe(&self, pattern: bool, name: &Bytes, client: &Client) {
        add(self.map(pattern), name, client);
    }

    /// Removes `client` from the subscribers of `name` (a pattern if `pattern`).
    pub fn unsubscribe(&self, pattern: bool, name: &[u8], client: &Client) {
        remove(self.map(pattern), name, client);
    }

    fn map(&self, pattern: bool) -> &RefCell<HashMap<Bytes, Vec<Client>>> {
        if pattern {
            &self.patterns
        } else {
            &self.channels
        }
    }

    /// Registers every subscription `client`'s session holds (a session restored from
    /// another process).
    pub fn restore(&self, client: &Client) {
        let st = client.borrow();
        for ch in &st.channels {
            add(&self.channels, ch, client);
        }
        for p in &st.patterns {
            add(&self.patterns, p, client);
        }
    }

    /// Drops every subscription of `client` (its connection is closing).
    pub fn forget(&self, client: &Client) {
        let st = client.borrow();
        for ch in &st.channels {
            remove(&self.channels, ch, client);
        }
        for p in &st.patterns {
            remove(&self.patterns, p, client);
        }
    }

    /// Queues `message` on `channel` for every subscriber of this core, by channel and by
    /// pattern (one message per matching pattern, as Redis), and returns how many were
    /// queued.
    pub fn publish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let mut n = 0;
        let mut pending = self.pending.borrow_mut();
        if let Some(list) = self.channels.borrow().get(channel) {
            let mut enc = Encoded::default();
            for c in list {
                let resp = c.borrow().resp;
                let bytes = enc.get(resp, || {
                    vec![
                        Reply::Bulk(Bytes::from_static(b"message")),
                        Reply::Bulk(channel.clone()),
                        Reply::Bulk(message.clone()),
                    ]
                });
                pending.push((c.clone(), bytes));
                n += 1;
            }
        }
        for (pattern, list) in self.patterns.borrow().iter() {
            if !glob_match(pattern, channel) {
                continue;
            }
            let mut enc = Encoded::default();
            for c in list {
                let resp = c.borrow().resp;
                let bytes = enc.get(resp, || {
                    vec![
                        Reply::Bulk(Bytes::from_static(b"pmessage")),
                        Reply::Bulk(pattern.clone()),
                        Reply::Bulk(channel.clone()),
                        Reply::Bulk(message.clone()),
                    ]
                });
                pending.push((c.clone(), bytes));
                n += 1;
            }
        }
        n
    }

    /// The queued messages, for the loop to move into their connections' output.
    pub fn take_pending(&self) -> Vec<(Client, Bytes)> {
        std::mem::take(&mut *self.pending.borrow_mut())
    }

    /// Channels with at least one subscriber here, matching `pattern` if given.
    pub fn channel_names(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.channels
            .borrow()
            .keys()
            .filter(|ch| pattern.is_none_or(|p| glob_match(p, ch)))
            .cloned()
            .collect()
    }

    /// Subscribers here of each of `channels`.
    pub fn numsub(&self, channels: &[Bytes]) -> Vec<usize> {
        let map = self.channels.borrow();
        channels
            .iter()
            .map(|ch| map.get(ch).map_or(0, Vec::len))
            .collect()
    }

    /// Patterns with at least one subscriber here.
    pub fn pattern_names(&self) -> Vec<Bytes> {
        self.patterns.borrow().keys().cloned().collect()
    }
}

/// A message's encoding per RESP version, made once for all subscribers that speak it.
#[derive(Default)]
struct Encoded {
    by_proto: [Option<Bytes>; 2],
}

impl Encoded {
    fn get(&mut self, resp: u8, items: impl FnOnce() -> Vec<Reply>) -> Bytes {
        let slot = &mut self.by_proto[usize::from(resp >= 3)];
        slot.get_or_insert_with(|| {
            let mut out = Vec::new();
            resp::encode(&Reply::Push(items()), resp, &mut out);
            Bytes::from(out)
        })
        .clone()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::client::{ClientEntry, ConnInfo};
    use crate::session::{Protocol, Session};

    /// A client speaking RESP `resp`, for this module's and the commands' unit tests.
    pub(in crate::pubsub) fn client(resp: u8) -> Client {
        let mut s = Session::new(Protocol::Redis, true);
        s.resp = resp;
        ClientEntry::new(s, ConnInfo::new(9, None, None, 0))
    }

    pub(in crate::pubsub) fn b(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    #[test]
    fn publish_reaches_channel_and_pattern_subscribers_in_their_protocol() {
        let reg = PubSub::new();
        let (two, three) = (client(2), client(3));
        reg.subscribe(false, &b("news"), &two);
        reg.subscribe(true, &b("n*"), &three);
        assert_eq!(reg.publish(&b("news"), &b("hi")), 2);
        assert_eq!(reg.publish(&b("other"), &b("x")), 0);
        let pending = reg.take_pending();
        assert_eq!(pending.len(), 2);
        assert!(Rc::ptr_eq(&pending[0].0, &two));
        assert_eq!(
            &pending[0].1[..],
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(
            &pending[1].1[..],
            b">4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert!(reg.take_pending().is_empty());
    }

    #[test]
    fn forget_removes_every_subscription() {
        let reg = PubSub::new();
        let c = client(2);
        {
            let mut st = c.borrow_mut();
            st.channels.insert(b("a"));
            st.patterns.insert(b("p*"));
        }
        reg.restore(&c);
        assert_eq!(reg.numsub(&[b("a"), b("b")]), [1, 0]);
        assert_eq!(reg.pattern_names(), [b("p*")]);
        reg.forget(&c);
        assert!(reg.channel_names(None).is_empty());
        assert!(reg.pattern_names().is_empty());
    }
}
